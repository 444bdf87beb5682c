import { render } from "preact";
import { boot } from "./session";
import { App } from "./shell/App";
import "./style.css";

const root = document.getElementById("app")!;
boot().finally(() => render(<App />, root));
