// The pages residents and visitors open on their phones (#/r, #/v/<token>): no staff sign-in,
// no staff header. Chinese by default; one tap for English.
import { useEffect } from "preact/hooks";
import { language, setLanguage, useLanguage } from "../i18n";
import { registerWorker } from "../pages/m/pwa";
import { useLocation } from "../router";
import { Resident } from "./Resident";
import { Visitor } from "./Visitor";
import "./pass.css";

export function isPassPage(hash: string): boolean {
  return /^#\/(r|v)(\/|$|\?)/.test(hash);
}

export function PassApp() {
  useLanguage();
  const loc = useLocation();
  useEffect(registerWorker, []);  // the page opens again without signal
  const other = language.get() === "zh-CN" ? "en" : "zh-CN";
  return (
    <main class="pass-page" id="main">
      <button type="button" class="pass-lang" onClick={() => void setLanguage(other)}>
        {other === "en" ? "English" : "中文"}</button>
      {loc.page === "v" ? <Visitor token={loc.rest[0] ?? ""} />
        : <Resident tab={loc.rest[0] ?? ""} />}
    </main>
  );
}
