/**
 * Group commit: writes that many concurrent callers would each send as their own statement are sent
 * together. An item submitted while fewer than `maxParallel` batches are being written is written at
 * once; otherwise it joins the next batch, written as soon as a batch in flight is done. There is no
 * timer, so an idle engine adds no delay, and under load each statement carries many items.
 *
 * `write` gets a batch and answers one result per item, in order. A batch that fails (two batches
 * deadlocking, say) is written again one item at a time, so a bad item fails alone.
 *
 * With `order`, each batch (and a failed batch's items, one by one) is written sorted by it. With
 * `orderKey`, items of one key are written in the order submitted: an item whose key is in a
 * batch being written waits for that batch to end (two batches in flight commit in either order).
 * Items of other keys go on meanwhile.
 *
 * @example
 * const steps = new GroupCommit((batch: Checkpoint[]) => storeCheckpoints(db, batch));
 * const stored = await steps.submit(checkpoint);
 */
export class GroupCommit<I, O> {
  private pending: { item: I; resolve: (result: O) => void; reject: (error: unknown) => void }[] = [];
  private writing = 0;
  private readonly maxBatch: number;
  private readonly maxParallel: number;
  private readonly order: ((a: I, b: I) => number) | undefined;
  private readonly orderKey: ((item: I) => string | undefined) | undefined;
  /** How many items of each key the batches being written hold. */
  private readonly keysInFlight = new Map<string, number>();

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    options: {
      maxBatch?: number;
      maxParallel?: number;
      order?: (a: I, b: I) => number;
      orderKey?: (item: I) => string | undefined;
    } = {},
  ) {
    this.maxBatch = options.maxBatch ?? 100;
    this.maxParallel = options.maxParallel ?? 2;
    this.order = options.order;
    this.orderKey = options.orderKey;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.pending.length > 0 && this.writing < this.maxParallel) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      const order = this.order;
      if (order) batch.sort((a, b) => order(a.item, b.item));
      const orderKey = this.orderKey;
      const keys = orderKey ? batch.flatMap((entry) => orderKey(entry.item) ?? []) : [];
      for (const key of keys) this.keysInFlight.set(key, (this.keysInFlight.get(key) ?? 0) + 1);
      this.writing += 1;
      void this.flush(batch).finally(() => {
        for (const key of keys) {
          const left = (this.keysInFlight.get(key) ?? 1) - 1;
          if (left > 0) this.keysInFlight.set(key, left);
          else this.keysInFlight.delete(key);
        }
        this.writing -= 1;
        this.pump();
      });
    }
  }

  /** The next batch: the oldest pending items, leaving those whose key a batch being written holds. */
  private takeBatch(): typeof this.pending {
    const orderKey = this.orderKey;
    if (!orderKey || this.keysInFlight.size === 0) return this.pending.splice(0, this.maxBatch);
    const batch: typeof this.pending = [];
    const waiting: typeof this.pending = [];
    for (const entry of this.pending) {
      if (batch.length < this.maxBatch) {
        const key = orderKey(entry.item);
        if (key === undefined || !this.keysInFlight.has(key)) {
          batch.push(entry);
          continue;
        }
      }
      waiting.push(entry);
    }
    this.pending = waiting;
    return batch;
  }

  private async flush(batch: typeof this.pending): Promise<void> {
    try {
      const results = await this.write(batch.map((entry) => entry.item));
      for (const [index, entry] of batch.entries()) entry.resolve(results[index] as O);
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      for (const entry of batch) {
        try {
          const [result] = await this.write([entry.item]);
          entry.resolve(result as O);
        } catch (itemError) {
          entry.reject(itemError);
        }
      }
    }
  }
}

/**
 * Splits items into rounds in which no key appears twice, keeping each key's items in order: a
 * statement that locks and updates one row per key can then take a whole round at once.
 */
export function roundsByKey<T>(items: T[], key: (item: T) => string): T[][] {
  const rounds: T[][] = [];
  const seen: Set<string>[] = [];
  for (const item of items) {
    const k = key(item);
    let index = 0;
    while (seen[index]?.has(k)) index += 1;
    if (!rounds[index]) {
      rounds[index] = [];
      seen[index] = new Set();
    }
    rounds[index]?.push(item);
    seen[index]?.add(k);
  }
  return rounds;
}
