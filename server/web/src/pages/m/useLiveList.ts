// A list read from the API and read again when the live stream says something changed (and
// after each reconnect, for what was missed meanwhile).
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../../api";
import * as live from "../../live";

export function useLiveList<T>(fetch: () => Promise<T[]>, kinds: string[]) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState("");
  const reload = async () => {
    try {
      setItems(await fetch());
      setError("");
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  useEffect(() => {
    void reload();
    return live.subscribe((msg) => {
      if (kinds.includes(msg.type)) void reload();
    });
  }, []);
  return { items, error, setError, reload };
}
