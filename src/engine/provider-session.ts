/**
 * Upstream resources a provider keeps across the calls of one door session
 * — a realtime session's recognizer socket, kept from turn to turn — so a
 * provider can serve call after call over one connection. The door owns
 * it: it hands the same {@link ProviderSession} to each call
 * (`CallOptions.session`), and closes it when the session ends, which
 * closes every resource in it. Providers that keep nothing ignore it.
 */

/** A resource kept in a session (closed with it). */
export interface SessionResource {
  /** Releases the resource (e.g. ends and closes a socket). Must not throw; called once. */
  close(): void;
}

/** What a provider sees of a door session. */
export interface ProviderSession {
  /** Aborts when the session ends: resources opened for the session use it instead of a call's signal. */
  readonly signal: AbortSignal;
  /** The resource stored under `key`, or undefined. */
  get(key: string): SessionResource | undefined;
  /** Stores `resource` under `key` (a resource already there is closed first); closed at once when the session has ended. */
  set(key: string, resource: SessionResource): void;
  /** Forgets `key` without closing what was stored (the resource closed itself). */
  delete(key: string, resource: SessionResource): void;
}

/** The door's side of a {@link ProviderSession}: close it when the session ends. */
export class ProviderSessionStore implements ProviderSession {
  private readonly resources = new Map<string, SessionResource>();
  /** Made when the signal is first read: a session whose providers keep nothing (text only) never needs one. */
  private controller: AbortController | undefined;
  private closed = false;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.closed) this.controller.abort();
    }
    return this.controller.signal;
  }

  get(key: string): SessionResource | undefined {
    return this.resources.get(key);
  }

  set(key: string, resource: SessionResource): void {
    if (this.closed) {
      resource.close();
      return;
    }
    const old = this.resources.get(key);
    this.resources.set(key, resource);
    if (old && old !== resource) old.close();
  }

  delete(key: string, resource: SessionResource): void {
    if (this.resources.get(key) === resource) this.resources.delete(key);
  }

  /** Number of resources held (tests). */
  get size(): number {
    return this.resources.size;
  }

  /** Ends the session: closes every resource (each may still send its goodbye), then aborts the signal. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    const all = [...this.resources.values()];
    this.resources.clear();
    for (const r of all) r.close();
    this.closed = true;
    this.controller?.abort();
  }
}
