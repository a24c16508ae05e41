/**
 * Prometheus metrics. One registry per server instance (tests run several in one
 * process); each part of netboot registers its counters on it under `netboot_`.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter<'server' | 'route' | 'method' | 'status'>
  readonly httpDuration: Histogram<'server' | 'route'>
  readonly authFailures: Counter<'reason'>
  readonly auditEntries: Counter<'action'>
}

export function createMetrics (opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'netboot_' })
  return {
    registry,
    httpRequests: new Counter({ name: 'netboot_http_requests_total', help: 'HTTP requests served', labelNames: ['server', 'route', 'method', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'netboot_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['server', 'route'], registers: [registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    }),
    authFailures: new Counter({ name: 'netboot_admin_auth_failures_total', help: 'Admin API requests refused (401/403)', labelNames: ['reason'], registers: [registry] }),
    auditEntries: new Counter({ name: 'netboot_audit_entries_total', help: 'Audit log entries written by this process', labelNames: ['action'], registers: [registry] }),
  }
}
