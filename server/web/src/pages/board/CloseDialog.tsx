// Closing (or judging false) while the device still reports the alarm needs a reason: the next
// alarm message would open a new incident at once. The server refuses without one.
import { useEffect, useState } from "preact/hooks";
import type { Incident } from "../../api";
import { Dialog } from "../../components/Dialog";
import { actionName, t } from "../../i18n";

export function needsReason(inc: Incident, action: string, extra: Record<string, unknown>): boolean {
  if (inc.alarm !== "active") return false;
  return (action === "verify" && extra.passed !== false) || action === "invalidate";
}

export function CloseDialog(props: { open: boolean; action: string; busy: boolean;
                                     cancel: () => void; submit: (reason: string) => void }) {
  const [reason, setReason] = useState("");
  useEffect(() => { if (props.open) setReason(""); }, [props.open]);
  return (
    <Dialog open={props.open} title={t("board.reason_title")} onClose={props.cancel} id="reason-dialog">
      <form method="dialog" onSubmit={(e) => { e.preventDefault(); if (reason.trim()) props.submit(reason.trim()); }}>
        <p>{t("errors.close_reason_required")}</p>
        <label>{t("board.reason")}
          <textarea id="close-reason" rows={3} required maxLength={500} value={reason}
                    onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
        <div class="dialog-buttons">
          <button type="button" onClick={props.cancel}>{t("app.cancel")}</button>
          <button type="submit" class="primary" disabled={props.busy || !reason.trim()}>
            {actionName(props.action)}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
