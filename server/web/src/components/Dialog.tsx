import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

/** A modal <dialog>: focus is trapped by the browser, Escape closes it (onClose). */
export function Dialog(props: { open: boolean; title: string; onClose: () => void;
                                children: ComponentChildren; id?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  const titleId = `${props.id ?? "dialog"}-title`;
  return (
    <dialog ref={ref} id={props.id} class="dialog" aria-labelledby={titleId}
            onClose={() => props.open && props.onClose()}>
      <h2 id={titleId}>{props.title}</h2>
      {props.open ? props.children : null}
    </dialog>
  );
}
