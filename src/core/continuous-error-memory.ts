/** A permanent refusal the upstream gave, as remembered: its reply code, enhanced code and text. */
export interface RememberedRefusal {
  code: number;
  enhanced: string;
  text: string;
}

/** How refusals are counted and how long a submission is held back once they reach the threshold. */
export interface ContinuousErrorLimits {
  /** Refusals of one submission (mailbox, sender, recipient) within `windowMs` that start the hold. */
  threshold: number;
  windowMs: number;
  /** How long the submission is then refused locally. */
  holdMs: number;
}

/**
 * Port: what passgate remembers of an upstream's repeated permanent refusals, per submission key (made by core's
 * ContinuousErrorThrottle from the mailbox, sender and recipient). In memory for one instance; in Redis, shared by
 * every instance (rate-limit/), so a scanner that reconnects to another instance is held back too.
 */
export interface ContinuousErrorMemory {
  /** Counts one refusal of `key`; at the threshold the key is held for `holdMs` with this refusal. True: now held. */
  record(key: string, refusal: RememberedRefusal, limits: ContinuousErrorLimits): Promise<boolean>;
  /** The refusal `key` is held back with, and for how much longer; null when it is not held. */
  held(key: string): Promise<{ refusal: RememberedRefusal; remainingMs: number } | null>;
  /** The submission went through: its count of refusals starts again (a hold in force stays). */
  forget(key: string): Promise<void>;
}
