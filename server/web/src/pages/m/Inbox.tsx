// The inbox: every page I received (kept on the server, so one sent while the app was closed
// waits here), unread first. Opening one marks it read and leads to the task.
import { api, request } from "../../api";
import { EmptyState } from "../../components/EmptyState";
import { t } from "../../i18n";
import { hrefOf, navigate } from "../../router";
import { relative, useNow } from "../../time";
import { remember } from "./known";
import { refreshUnread } from "./unread";
import { useLiveList } from "./useLiveList";
import type { InboxItem } from "./types";

export function Inbox() {
  const { items, error } = useLiveList(async () => {
    const found = await api<InboxItem[]>("/api/v1/inbox", { query: { limit: 100 },
                                                           background: true });
    found.forEach((item) => item.incident && remember(item.incident));
    return found;
  }, ["page", "connected"]);
  const now = useNow(30_000);

  const open = async (item: InboxItem) => {
    if (item.unread) {
      try {
        await request(`/api/v1/inbox/${encodeURIComponent(item.incident_id)}/read`,
                      { method: "POST" });
      } catch { /* offline: it is marked when the task is opened online */ }
      void refreshUnread();
    }
    navigate(hrefOf("m", ["i", item.incident_id]));
  };

  if (items === null) return <p class="muted">{error || t("app.loading")}</p>;
  return (
    <ul class="phone-list phone-inbox">
      {error && <li class="error" role="alert">{error}</li>}
      {items.length === 0 && <li><EmptyState text={t("m.no_pages")} /></li>}
      {items.map((item) => (
        <li key={item.incident_id}>
          <button type="button" class={`phone-page${item.unread ? " unread" : ""}`}
                  onClick={() => void open(item)} data-incident={item.incident_id}>
            {item.unread && <span class="phone-dot" aria-label={t("m.unread_one")} />}
            <span class="phone-page-title">{item.title}</span>
            <span class="phone-page-meta muted">
              {item.incident?.point_name ?? item.incident?.point ?? item.incident_id}
              {" · "}{relative(item.paged_at, now)}
              {item.pages > 1 ? ` · ${t("m.pages", { n: item.pages })}` : ""}
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}
