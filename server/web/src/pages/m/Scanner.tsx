// The phone's camera reading a point's QR label (jsQR from npm decodes the frames; nothing
// hand-written). A code of another kind (a pass) is refused here, before the server.
import jsQR from "jsqr";
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../../i18n";
import { LABEL_PREFIX, PASS_PREFIX } from "./types";

const SCAN_EVERY_MS = 150;

export function Scanner({ onLabel, onClose }: { onLabel: (text: string) => void;
                                                onClose: () => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [message, setMessage] = useState(t("m.scan_hint"));

  useEffect(() => {
    let stream: MediaStream | null = null;
    let timer: number | undefined;
    let done = false;
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });

    const scan = () => {
      const el = video.current;
      if (done || !el || !context) return;
      if (el.readyState >= el.HAVE_CURRENT_DATA && el.videoWidth) {
        canvas.width = el.videoWidth;
        canvas.height = el.videoHeight;
        context.drawImage(el, 0, 0);
        const frame = context.getImageData(0, 0, canvas.width, canvas.height);
        const found = jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
        if (found?.data.startsWith(LABEL_PREFIX)) {
          done = true;
          onLabel(found.data);
          return;
        }
        if (found) setMessage(found.data.startsWith(PASS_PREFIX) ? t("m.scan_pass")
                                                                : t("m.scan_not_ours"));
      }
      timer = window.setTimeout(scan, SCAN_EVERY_MS);
    };

    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then((s) => {
        stream = s;
        if (done || !video.current) return;
        video.current.srcObject = s;
        void video.current.play().catch(() => {});
        scan();
      })
      .catch((e: unknown) => setMessage(`${t("m.camera_failed")} (${e instanceof Error ? e.name : e})`));
    return () => {
      done = true;
      clearTimeout(timer);
      stream?.getTracks().forEach((track) => track.stop());
    };
  }, []);

  return (
    <div class="phone-scanner">
      <video ref={video} muted playsInline aria-label={t("m.camera")} />
      <p role="status">{message}</p>
      <button type="button" onClick={onClose}>{t("app.cancel")}</button>
    </div>
  );
}
