import type { ComponentChildren } from "preact";

/** What a list shows when it has nothing: a sentence, and optionally an action. */
export function EmptyState(props: { text: string; id?: string; children?: ComponentChildren }) {
  return (
    <div class="empty-state" id={props.id} role="status">
      <p>{props.text}</p>
      {props.children}
    </div>
  );
}
