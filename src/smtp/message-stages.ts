import type { Readable, Transform } from 'node:stream';
import type { SmtpReplySpec } from './smtp-replies.js';

/** A step the message passes through on its way upstream; it may refuse the message by failing with `refusal` set. */
export type MessageStage = Transform & { refusal?: SmtpReplySpec | null };

/**
 * The client's message stream piped through `stages` in order; `body` is what goes upstream. A stage that fails
 * fails `body`, which makes UpstreamSmtpSession#data abandon the upstream transaction before its final "." (nothing
 * is delivered); the caller then drains the client's stream, so the reply comes after the client's final ".".
 */
export class MessageStages {
  readonly body: Readable;

  constructor(
    source: Readable,
    private readonly stages: readonly MessageStage[],
  ) {
    let tail: Readable = source;
    for (const stage of stages) tail = tail.pipe(stage);
    this.body = tail;
    const last = stages.at(-1)!;
    for (const stage of stages) stage.on('error', (error: Error) => (stage === last ? undefined : last.destroy(error)));
    source.once('error', (error) => last.destroy(error));
  }

  private abortedWith: SmtpReplySpec | null = null;

  /** Refuses the message from outside (a revocation heard while it streams): the upstream never gets its ".". */
  abort(refusal: SmtpReplySpec): void {
    this.abortedWith ??= refusal;
    const last = this.stages.at(-1)!;
    // Destroyed before the upstream reads it (its 354 still on the way), the failure would go unheard: wait for the
    // read to start (pipe() resumes the stream; BDAT reads it through its async iterator, a 'readable' listener) so
    // the upstream session sees it and abandons the transaction.
    if (last.readableFlowing !== null || last.listenerCount('readable') > 0) last.destroy(new Error('message aborted'));
    else last.once('resume', () => last.destroy(new Error('message aborted')));
  }

  get aborted(): boolean {
    return this.abortedWith !== null;
  }

  /** Why the message was refused: from outside (abort), or the first stage that refused it. */
  refusal(): SmtpReplySpec | null {
    if (this.abortedWith) return this.abortedWith;
    for (const stage of this.stages) if (stage.refusal) return stage.refusal;
    return null;
  }

  destroy(): void {
    for (const stage of this.stages) stage.destroy();
  }
}
