// A QR code drawn as one SVG path (no canvas, no inline style: the page's CSP allows neither
// eval nor inline styles). Passes are upper-case base32 after "GS1:P:": QR's alphanumeric mode.
import qrcode from "qrcode-generator";

export function Qr({ text, label }: { text: string; label: string }) {
  const code = qrcode(0, "M");
  code.addData(text, /^[0-9A-Z $%*+\-./:]*$/.test(text) ? "Alphanumeric" : "Byte");
  code.make();
  const count = code.getModuleCount();
  const quiet = 4;
  let path = "";
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (code.isDark(row, col)) path += `M${col + quiet} ${row + quiet}h1v1h-1z`;
    }
  }
  const size = count + quiet * 2;
  return (
    <svg class="pass-qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={label}
         shape-rendering="crispEdges" data-qr={text}>
      <rect width={size} height={size} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}
