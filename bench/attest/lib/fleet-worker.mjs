// The fleet thread's entry (fleet-thread.ts): tsx's loader does not follow into worker
// threads, so the thread registers it before it loads the TypeScript.
import { register } from 'tsx/esm/api'
register()
await import('./fleet-worker.ts')
