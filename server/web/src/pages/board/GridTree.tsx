import type { RegistryTree, TreeNode } from "../../api";
import { t } from "../../i18n";

function Node(props: { node: TreeNode; depth: number; selected: string; pick: (id: string) => void }) {
  const { node } = props;
  const active = props.selected === node.id;
  return (
    <li>
      <button type="button" class={`tree-node depth-${props.depth}${active ? " active" : ""}`}
              aria-pressed={active} data-node={node.id}
              onClick={() => props.pick(active ? "" : node.id)}>
        <span class="tree-name">{node.name}</span>
        <span class="tree-counts">
          <span class="open-count" title={t("board.open_count")}>{node.open}</span>
          {node.overdue > 0 ? (
            <span class="overdue-count" title={t("board.overdue_count")}>
              {t("board.overdue_short", { n: node.overdue })}
            </span>
          ) : null}
        </span>
      </button>
      {node.children.length ? (
        <ul>
          {node.children.map((child) => (
            <Node key={child.id} node={child} depth={props.depth + 1} selected={props.selected}
                  pick={props.pick} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

/** Street → community → grid → micro-grid with open and overdue counts; a click filters. */
export function GridTree(props: { tree: RegistryTree | null; selected: string;
                                  pick: (id: string) => void }) {
  return (
    <nav class="grid-tree card" aria-label={t("board.tree")} id="grid-tree">
      <h2>{t("board.tree")}</h2>
      <button type="button" class={`tree-node depth-0${props.selected ? "" : " active"}`}
              aria-pressed={!props.selected} onClick={() => props.pick("")}>
        <span class="tree-name">{t("board.all_grids")}</span>
      </button>
      <ul>
        {(props.tree?.streets ?? []).map((street) => (
          <Node key={street.id} node={street} depth={0} selected={props.selected} pick={props.pick} />
        ))}
      </ul>
      {props.tree?.unassigned && props.tree.unassigned.open > 0 ? (
        <p class="muted unassigned">{t("board.unassigned", { n: props.tree.unassigned.open })}</p>
      ) : null}
    </nav>
  );
}

export function nodeName(tree: RegistryTree | null, id: string): string | null {
  if (!id || !tree) return id || null;
  const walk = (nodes: TreeNode[]): string | null => {
    for (const n of nodes) {
      if (n.id === id) return n.name;
      const below = walk(n.children);
      if (below) return below;
    }
    return null;
  };
  return walk(tree.streets) ?? id;
}
