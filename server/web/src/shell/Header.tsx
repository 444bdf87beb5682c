import { LANGUAGES, roleName, setLanguage, t, useLanguage } from "../i18n";
import type { Language } from "../i18n";
import * as live from "../live";
import { ROUTES } from "../routes";
import { hrefOf } from "../router";
import { display, session, signOut, signOutEverywhere } from "../session";
import { useStore } from "../store";
import { formatClock, useNow, zoneLabel } from "../time";

const LANGUAGE_LABELS: Record<Language, string> = { "zh-CN": "中文", en: "English" };

function Clock() {
  const now = useNow(1000);
  useLanguage();
  return (
    <span class="clock" id="clock" aria-live="off">
      <span class="clock-zone">{zoneLabel()}</span> <time>{formatClock(now)}</time>
    </span>
  );
}

export function LanguageSwitch(props: { username?: string }) {
  const current = useLanguage();
  return (
    <div class="lang-switch" role="group" aria-label={t("app.language")}>
      {LANGUAGES.map((lang) => (
        <button type="button" key={lang} lang={lang} aria-pressed={current === lang}
                onClick={() => setLanguage(lang, props.username)}>
          {LANGUAGE_LABELS[lang]}
        </button>
      ))}
    </div>
  );
}

export function Header(props: { page: string }) {
  useLanguage();
  const who = useStore(session);
  const settings = useStore(display);
  const isLive = useStore(live.connected);
  const title = settings?.title || t("app.title");
  const routes = ROUTES.filter((r) => !r.roles || (who && r.roles.includes(who.role)));
  return (
    <header class="app-header">
      <div class="brand">
        <span class="title" id="app-title">{title}</span>
        <Clock />
      </div>
      {who ? (
        <nav aria-label={t("app.nav_label")} class="nav">
          {routes.map((r) => (
            <a key={r.name} href={hrefOf(r.name)} aria-current={props.page === r.name ? "page" : undefined}>
              {t(r.nav)}
            </a>
          ))}
        </nav>
      ) : null}
      <div class="header-tools">
        {who ? (isLive ? (
          <span id="live" class="live on" role="status">● {t("app.live")}</span>
        ) : (
          <span id="offline" class="live off" role="status">○ {t("app.offline")}</span>
        )) : null}
        {who ? (
          <span id="who" class="who">
            {who.name || who.username} <small>{roleName(who.role)}</small>
          </span>
        ) : null}
        <LanguageSwitch username={who?.username} />
        {who ? (
          <>
            <button type="button" id="logout" onClick={() => signOut()}>{t("app.sign_out")}</button>
            <button type="button" id="logout-all" onClick={() => signOutEverywhere()}>
              {t("app.sign_out_everywhere")}
            </button>
          </>
        ) : null}
      </div>
    </header>
  );
}
