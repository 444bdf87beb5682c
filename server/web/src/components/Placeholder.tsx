import { t } from "../i18n";
import { EmptyState } from "./EmptyState";

/** A page that is not built yet: its title and a sentence (replaced by the page's own screen). */
export function Placeholder(props: { titleKey: string }) {
  return (
    <section class="page card" aria-labelledby="page-title">
      <h1 id="page-title">{t(props.titleKey)}</h1>
      <EmptyState text={t("app.placeholder")} />
    </section>
  );
}
