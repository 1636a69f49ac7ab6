import type { Protocol } from '../core/protocol.js';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ListenerConfig } from '../config/config-schema.js';
import type { EventLogger } from '../core/event-logger.js';

/** The TCP side of a listener: bind where configured, hand each connection on, log once, close once. */
export class TcpListener {
  private readonly server: Server;

  constructor(
    private readonly config: ListenerConfig,
    private readonly protocol: Protocol,
    private readonly log: EventLogger,
    onConnection: (socket: Socket) => void,
  ) {
    this.server = createServer(onConnection);
    this.server.on('error', (error: Error) => log.error({ listener: config.name, cause: error.message }, 'listener error'));
  }

  async listen(): Promise<AddressInfo> {
    this.server.listen(this.config.port, this.config.host);
    await once(this.server, 'listening');
    const address = this.server.address() as AddressInfo;
    this.log.info({ listener: this.config.name, protocol: this.protocol, port: address.port, host: address.address, tls: this.config.tls }, 'listener started');
    return address;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting; resolves when the last connection is gone (the caller ends them). */
  close(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
