// The live board (#/board, #/board/<incident id>): open incidents by urgency with filters, the
// grid tree beside them, one incident's detail on the right; kept current by the live stream.
import { useMemo } from "preact/hooks";
import { EmptyState } from "../../components/EmptyState";
import { t, useLanguage } from "../../i18n";
import type { PageProps } from "../../routes";
import { hrefOf, navigate } from "../../router";
import { useNow } from "../../time";
import { Detail } from "./Detail";
import { FilterBar } from "./FilterBar";
import { filtersOf, queryOf } from "./filters";
import type { Filters } from "./filters";
import { GridTree, nodeName } from "./GridTree";
import { IncidentTable } from "./IncidentTable";
import { useBoardData } from "./model";
import { byUrgency } from "./urgency";

export default function Board(props: PageProps) {
  useLanguage();
  const { location } = props;
  const filters = useMemo(() => filtersOf(location.query), [location.query.toString()]);
  const selected = location.rest[0] ?? null;
  const data = useBoardData(filters);
  const now = useNow(5000);  // re-order as deadlines pass
  const ordered = useMemo(() => [...data.incidents].sort(byUrgency(now)), [data.incidents, now]);

  const go = (id: string | null, f: Filters = filters, replace = false) =>
    navigate(hrefOf("board", id ? [id] : [], queryOf(f)), replace);

  return (
    <div class={selected ? "board with-detail" : "board"} id="board">
      <GridTree tree={data.tree} selected={filters.grid}
                pick={(grid) => go(selected, { ...filters, grid }, true)} />
      <section class="board-list card" aria-labelledby="board-title">
        <header class="board-head">
          <h1 id="board-title">
            {filters.closed ? t("board.title_all") : t("board.title")}{" "}
            <small id="incident-count">{ordered.length}</small>
          </h1>
          <FilterBar filters={filters} change={(f) => go(selected, f, true)}
                     gridName={filters.grid ? nodeName(data.tree, filters.grid) : null} />
        </header>
        {data.error ? <p class="error" role="alert">{data.error}</p> : null}
        {ordered.length === 0 && !data.loading ? (
          <EmptyState id="no-incidents" text={filters.closed || filters.state || filters.grid || filters.type
            || filters.severity || filters.overdue || filters.range ? t("board.none_filtered") : t("board.none")} />
        ) : (
          <IncidentTable incidents={ordered} selected={selected} fresh={data.fresh}
                         open={(id) => go(id)} />
        )}
      </section>
      {selected ? (
        <Detail id={selected} close={() => go(null, filters, true)} changed={data.upsert} />
      ) : null}
    </div>
  );
}
