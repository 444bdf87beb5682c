// The grid worker's phone (#/m): my tasks, the inbox of pages, one task with its actions.
// #/m → tasks, #/m/inbox → pages, #/m/i/<incident> → the task.
import { useEffect } from "preact/hooks";
import { t, useLanguage } from "../../i18n";
import * as live from "../../live";
import { hrefOf } from "../../router";
import type { PageProps } from "../../routes";
import { useStore } from "../../store";
import { alertNewPage, unlockSound } from "./alert";
import { Inbox } from "./Inbox";
import { cameraAvailable, registerWorker, secure } from "./pwa";
import { flush, queued, refusedLater, startFlushing } from "./send";
import { Task } from "./Task";
import { Tasks } from "./Tasks";
import { refreshUnread, unread } from "./unread";
import "./phone.css";

export default function Phone({ location }: PageProps) {
  useLanguage();
  const count = useStore(unread);
  const waiting = useStore(queued);
  const refused = useStore(refusedLater);
  const [view, id] = location.rest;

  useEffect(() => {
    registerWorker();
    startFlushing();
    void refreshUnread();
    document.addEventListener("pointerdown", unlockSound, { once: true });
    return live.subscribe((msg) => {
      if (msg.type === "page") {
        alertNewPage();
        void refreshUnread();
      } else if (msg.type === "connected") {
        void refreshUnread();
        void flush();
      }
    });
  }, []);

  return (
    <section class="phone">
      {!secure() && <p class="phone-note" role="note">{t("m.insecure")}</p>}
      {secure() && !cameraAvailable() && <p class="phone-note" role="note">{t("m.no_camera")}</p>}
      {waiting > 0 && <p class="phone-queue" role="status">{t("m.queued", { n: waiting })}</p>}
      {refused.length > 0 && (
        <div class="phone-note error" role="alert">
          {refused.map((r) => <p key={r}>{t("m.refused_later")}：{r}</p>)}
          <button type="button" onClick={() => refusedLater.set([])}>{t("app.close")}</button>
        </div>
      )}
      <nav class="phone-tabs" aria-label={t("m.tabs")}>
        <a href={hrefOf("m")} aria-current={!view ? "page" : undefined}>{t("m.tasks")}</a>
        <a href={hrefOf("m", ["inbox"])} aria-current={view === "inbox" ? "page" : undefined}
           id="m-inbox-tab">
          {t("m.inbox")}
          {count > 0 && <span class="phone-badge" aria-label={t("m.unread", { n: count })}>{count}</span>}
        </a>
      </nav>
      {view === "inbox" ? <Inbox /> : view === "i" && id ? <Task id={id} /> : <Tasks />}
    </section>
  );
}
