// Unread pages: the inbox tab's badge, re-read when a page arrives or the stream reconnects.
import { api } from "../../api";
import { store } from "../../store";

export const unread = store<number>(0);

export async function refreshUnread(): Promise<void> {
  try {
    unread.set((await api<{ unread: number }>("/api/v1/inbox/unread", { background: true })).unread);
  } catch { /* offline: keep the last count */ }
}
