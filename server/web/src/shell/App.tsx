import { useLanguage } from "../i18n";
import { DEFAULT_ROUTE, ROUTES } from "../routes";
import { useLocation } from "../router";
import { session } from "../session";
import { useStore } from "../store";
import { Header } from "./Header";
import { Login } from "./Login";
import { PageNotice } from "./PageNotice";

export function App() {
  useLanguage();
  const who = useStore(session);
  const loc = useLocation();
  // A grid worker on a phone (a narrow touch screen) opens on the phone page; else the board.
  const fallback = who?.role === "worker"
    && matchMedia("(max-width: 820px) and (pointer: coarse)").matches ? "m" : DEFAULT_ROUTE;
  const route = ROUTES.find((r) => r.name === loc.page) ?? ROUTES.find((r) => r.name === fallback)!;
  const Page = route.page;
  return (
    <>
      <Header page={route.name} />
      {who ? (
        <main id="main" class={`page-${route.name}`} tabIndex={-1}>
          {route.name !== "m" && <PageNotice />}
          <Page location={loc.page === route.name ? loc : { ...loc, page: route.name, rest: [] }} />
        </main>
      ) : (
        <Login />
      )}
    </>
  );
}
