// The route table: one line per page. A page is src/pages/<name>/index.tsx whose default export
// takes PageProps; "nav" is its catalogue key in the header's navigation.
import type { FunctionComponent } from "preact";
import type { Location } from "./router";
import Board from "./pages/board";
import Plan from "./pages/plan";
import Stats from "./pages/stats";
import Gateways from "./pages/gateways";
import Install from "./pages/install";
import Phone from "./pages/m";
import Config from "./pages/config";
import Passes from "./pages/passes";

export interface PageProps {
  location: Location;  // the page's path segments and query (#/<page>/<rest>?<query>)
}

export interface Route {
  name: string;        // the hash: #/<name>
  nav: string;         // catalogue key of its navigation entry
  page: FunctionComponent<PageProps>;
  roles?: string[];    // only for these roles (absent: everyone signed in)
}

export const ROUTES: Route[] = [
  { name: "board", nav: "nav.board", page: Board },
  { name: "plan", nav: "nav.plan", page: Plan },
  { name: "stats", nav: "nav.stats", page: Stats },
  { name: "gateways", nav: "nav.gateways", page: Gateways },
  { name: "install", nav: "nav.install", page: Install },
  { name: "m", nav: "nav.m", page: Phone },
  { name: "config", nav: "nav.config", page: Config, roles: ["control", "leader"] },
  { name: "passes", nav: "nav.passes", page: Passes },
];

export const DEFAULT_ROUTE = "board";
