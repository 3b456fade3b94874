// The messages between the group-commit writer (writer.ts, main thread) and its SQLite worker
// (sqlite-writer-worker.ts) of DESIGN.md "Storage". A batch crosses the thread boundary as flat
// arrays of column values rather than one object per row: structured clone copies them faster,
// and the main thread is the one that must not spend its time.

/** Columns of one archive row, in this order (ArchiveTable): 8 values per row. */
export const ARCHIVE_ROW = 8;
/** Columns of one offline row, in this order: host, username, xml, stored_at. */
export const OFFLINE_ROW = 4;
/** Columns of one last-activity row, in this order: host, username, logout_seconds, status. */
export const LAST_ACTIVITY_ROW = 4;

export interface BatchRequest {
  type: "batch";
  id: number;
  /** Offline deletions, in the order written: [host, username, seqs]. */
  deletes: Array<[string, string, number[]]>;
  /** One entry per offline write, in the order written; `limit` null when it has none. */
  offline: Array<{ limit: number | null; rows: unknown[] }>;
  /** Every archive row of the batch, in the order written, ARCHIVE_ROW values each. */
  archive: unknown[];
  /** Every logout of the batch, in the order written, LAST_ACTIVITY_ROW values each. */
  lastActivity: unknown[];
}

export interface CloseRequest {
  type: "close";
}

export type WorkerRequest = BatchRequest | CloseRequest;

/** An error as it crossed the thread boundary. */
export interface ErrorData {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export type WorkerReply =
  /** Loaded and listening (the connection opens with the first batch). */
  | { type: "ready" }
  /** Committed. `refused` lists the offline writes (index into `offline`) turned away by their quota. */
  | { type: "done"; id: number; refused: Array<{ index: number; host: string; username: string; limit: number }> }
  /** Rolled back: nothing of the batch is stored. */
  | { type: "failed"; id: number; error: ErrorData }
  | { type: "closed" };
