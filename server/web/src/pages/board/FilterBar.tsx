import { codesOf, severityName, stateName, t, typeName } from "../../i18n";
import type { Filters } from "./filters";
import { RANGES } from "./filters";

/** A labelled drop-down whose first choice ("any") is the empty value. */
function Choice(props: { id: string; label: string; value: string; anyLabel: string;
                         options: [string, string][]; pick: (value: string) => void }) {
  return (
    <label>{props.label}
      <select id={props.id} value={props.value} onChange={(e) => props.pick(e.currentTarget.value)}>
        <option value="">{props.anyLabel}</option>
        {props.options.map(([value, text]) => <option key={value} value={value}>{text}</option>)}
      </select>
    </label>
  );
}

export function FilterBar(props: { filters: Filters; change: (f: Filters) => void;
                                   gridName: string | null }) {
  const f = props.filters;
  const set = (patch: Partial<Filters>) => props.change({ ...f, ...patch });
  return (
    <form class="filters" aria-label={t("board.filters")} onSubmit={(e) => e.preventDefault()}>
      <Choice id="filter-state" label={t("board.filter_state")} value={f.state} anyLabel={t("board.any_open")}
              options={codesOf("states").map((c) => [c, stateName(c)])} pick={(state) => set({ state })} />
      <Choice id="filter-type" label={t("board.filter_type")} value={f.type} anyLabel={t("board.any")}
              options={codesOf("incident_types").map((c) => [c, typeName(c)])} pick={(type) => set({ type })} />
      <Choice id="filter-severity" label={t("board.filter_severity")} value={f.severity} anyLabel={t("board.any")}
              options={["critical", "major", "minor"].map((c) => [c, severityName(c)])}
              pick={(severity) => set({ severity })} />
      <Choice id="filter-range" label={t("board.filter_range")} value={f.range} anyLabel={t("board.any_time")}
              options={Object.keys(RANGES).map((r) => [r, t(`board.range_${r}`)])} pick={(range) => set({ range })} />
      <label class="check">
        <input type="checkbox" id="filter-overdue" checked={f.overdue}
               onChange={(e) => set({ overdue: e.currentTarget.checked })} />
        {t("board.filter_overdue")}
      </label>
      <label class="check">
        <input type="checkbox" id="filter-closed" checked={f.closed}
               onChange={(e) => set({ closed: e.currentTarget.checked })} />
        {t("board.show_closed")}
      </label>
      {props.gridName ? (
        <button type="button" class="chip" id="filter-grid"
                aria-label={t("board.clear_grid", { name: props.gridName })}
                onClick={() => set({ grid: "" })}>
          {props.gridName} ×
        </button>
      ) : null}
    </form>
  );
}
