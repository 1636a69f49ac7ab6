import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** Counts the message bytes and fails the stream past the limit, so an oversized message never reaches "." upstream. */
export class SizeGuard extends Transform {
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) callback(new Error('message exceeds the size limit'));
    else callback(null, chunk);
  }
}

/** Reads and discards what is left of a message stream (smtp-server answers only once it has seen the whole message). */
export async function drain(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return;
  stream.unpipe();
  stream.resume();
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}
