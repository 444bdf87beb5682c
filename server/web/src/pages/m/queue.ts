/* Actions taken without a network, kept in IndexedDB (not localStorage: photos are Blobs) and
   sent in order once the phone is back online. Each carries the action id the server uses to
   apply it once, so a resend after a lost answer changes nothing. */

export interface QueuedAction {
  id: string; // the action id sent to the server
  incidentId: string;
  action: string; // accept, resolve, return, defer, checkin
  body: Record<string, unknown>;
  photos: Blob[]; // uploaded before the action; their server ids go into body.photos
  createdAt: number;
  lastError?: string;
}

const DB_NAME = "gridsense-phone";
const STORE = "queue";
export const QUEUE_LIMIT = 200; // bounded: a phone offline for days does not fill its storage

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: "id" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore<T>(mode: IDBTransactionMode,
                            use: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export async function pending(): Promise<QueuedAction[]> {
  const all = await withStore("readonly", (s) => s.getAll() as IDBRequest<QueuedAction[]>);
  return all.sort((a, b) => a.createdAt - b.createdAt);
}

export async function enqueue(item: QueuedAction): Promise<void> {
  if ((await pending()).length >= QUEUE_LIMIT) throw new Error("queue_full");
  await withStore("readwrite", (s) => s.put(item));
}

export async function remove(id: string): Promise<void> {
  await withStore("readwrite", (s) => s.delete(id));
}

export async function update(item: QueuedAction): Promise<void> {
  await withStore("readwrite", (s) => s.put(item));
}

export function newActionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "m-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
