import { useEffect, useState } from "preact/hooks";
import * as live from "../live";
import type { PageMessage } from "../live";
import { hrefOf, navigate } from "../router";
import { t } from "../i18n";

/** A page addressed to this user (escalation step, reminder): say so, link the incident. */
export function PageNotice() {
  const [page, setPage] = useState<PageMessage | null>(null);
  useEffect(() => live.subscribe((msg) => {
    if (msg.type === "page") setPage(msg as PageMessage);
  }), []);
  if (!page) return null;
  return (
    <div class="notice" role="status">
      <button type="button" id="page-notice" class="notice-link" onClick={() => {
        setPage(null);
        navigate(hrefOf("board", [page.incident_id]));
      }}>{page.title}</button>
      <button type="button" class="notice-dismiss" aria-label={t("app.close")}
              onClick={() => setPage(null)}>×</button>
    </div>
  );
}
