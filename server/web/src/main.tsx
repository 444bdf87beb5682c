import { render } from "preact";
import { loadLanguage, preferredLanguage } from "./i18n";
import { PassApp, isPassPage } from "./pass/PassApp";
import { boot } from "./session";
import { App } from "./shell/App";
import "./style.css";

const root = document.getElementById("app")!;
if (isPassPage(location.hash)) {
  // Residents and visitors: no staff session, no live stream.
  loadLanguage(preferredLanguage("zh-CN")).catch(() => {}).finally(() => render(<PassApp />, root));
} else {
  boot().finally(() => render(<App />, root));
}
