import { useState } from "preact/hooks";
import { t, useLanguage } from "../i18n";
import { signIn, signedOutReason } from "../session";
import { useStore } from "../store";

export function Login() {
  useLanguage();
  const reason = useStore(signedOutReason);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const shown = error ?? reason;
  async function submit(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    setError("");
    try {
      const failed = await signIn(String(data.get("username") ?? ""), String(data.get("password") ?? ""));
      setError(failed);
      if (failed === null) form.reset();
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="login-wrap">
      <form id="login" class="card login" autocomplete="on" onSubmit={submit}>
        <h1>{t("login.heading")}</h1>
        <label>{t("login.username")}
          <input name="username" autocomplete="username" required autoFocus />
        </label>
        <label>{t("login.password")}
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit" class="primary" disabled={busy}>{t("login.submit")}</button>
        <p id="login-error" class="error" role="alert">{shown}</p>
      </form>
    </main>
  );
}
