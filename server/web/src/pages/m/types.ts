// The shapes of the phone's own API calls (docs/api.md, "The worker's phone").
import type { Incident, Transition } from "../../api";

export interface InboxItem {
  incident_id: string;
  paged_at: string;
  pages: number;
  channels: string[];
  title: string;
  body: string;
  unread: boolean;
  read_at: string | null;
  incident: Incident | null;
}

export interface PhotoLink { url: string; thumbnail_url: string | null }
export interface ActionResult { incident: Incident; transition: Transition }
export interface PhotoView extends PhotoLink { id: string; media_type: string }

// The QR prefix scheme (gridsense_protocol/qr.py): a point's label vs an electronic pass.
export const LABEL_PREFIX = "GS1:L:";
export const PASS_PREFIX = "GS1:P:";
