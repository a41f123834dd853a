/** An event for the jobs engine, as `inngest.send` takes it. */
export interface JobEvent {
  name: string;
  data: Record<string, unknown>;
  /** Dedupe key: an id the engine has seen in the last 24 h is not stored twice. */
  id?: string;
}

/** Sends events to whichever engine runs the functions; the composition root binds it to `inngest.send`. */
export type SendEvent = (events: JobEvent[]) => Promise<void>;
