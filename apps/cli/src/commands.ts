import { DELETE_HELP, GET_HELP, PUT_HELP } from './help.js'

/** What a command is once its module is loaded. */
export interface Loaded {
  /** Its full help, which starts with its usage line(s). */
  readonly help: string
  /** Run it on the arguments after its name; resolves to the exit code, or KEEP_RUNNING. */
  run(argv: string[]): Promise<number>
}

/**
 * One command. Its module loads only when the command runs or shows its help,
 * so `get` never loads `dev`'s or `bench`'s code (they start kvorum-node, which
 * the ops commands do not need installed).
 */
export interface Command {
  /** One line for the list in the parent's help. */
  readonly summary: string
  load(): Promise<Loaded>
}

/** A command made of subcommands (`cluster init|plan|...`). */
export interface Group {
  readonly summary: string
  readonly subcommands: Readonly<Record<string, Command>>
}

/** What a command's run resolves to when the process must stay up after it (dev: until Ctrl-C). */
export const KEEP_RUNNING = -1

function membership(sub: 'plan' | 'rebalance' | 'abort' | 'status', summary: string): Command {
  return {
    summary,
    load: async () => {
      const m = await import('./membership.js')
      const help = { plan: m.PLAN_HELP, rebalance: m.REBALANCE_HELP, abort: m.ABORT_HELP, status: m.CLUSTER_STATUS_HELP }[sub]
      return { help, run: (argv) => m.membershipCommand(sub, argv) }
    },
  }
}

function data(command: 'get' | 'put' | 'delete', help: string, summary: string): Command {
  return { summary, load: async () => ({ help, run: async (argv) => (await import('./data-commands.js')).dataCommand(command, argv) }) }
}

const CLUSTER: Group = {
  summary: 'define the cluster and change its nodes: init|plan|rebalance|abort|status',
  subcommands: {
    init: {
      summary: 'write the first cluster definition to running nodes',
      load: async () => {
        const m = await import('./init-command.js')
        return { help: m.INIT_HELP, run: m.initCommand }
      },
    },
    plan: membership('plan', 'print what adding, removing or replacing nodes would move; changes nothing'),
    rebalance: membership('rebalance', 'carry out such a change, stage by stage (resumes after a kill)'),
    abort: membership('abort', 'end a change before its switch; the old layout serves again'),
    status: membership('status', 'the definition version, any change in progress, each node’s version'),
  },
}

function store(sub: 'list' | 'create' | 'alter', summary: string): Command {
  return {
    summary,
    load: async () => {
      const m = await import('./store.js')
      const help = { list: m.STORE_LIST_HELP, create: m.STORE_CREATE_HELP, alter: m.STORE_ALTER_HELP }[sub]
      return { help, run: (argv) => m.storeCommand(sub, argv) }
    },
  }
}

const STORE: Group = {
  summary: 'add and change stores: list|create|alter',
  subcommands: {
    list: store('list', 'every store and its settings'),
    create: store('create', 'add a store on every node'),
    alter: store('alter', 'change a store’s quorums, limits, conflict mode or tombstone grace'),
  },
}

/** Every command of `kvorum`, in the order the help lists them. Adding one is one entry. */
export const COMMANDS: Readonly<Record<string, Command | Group>> = {
  dev: {
    summary: 'start a local cluster on 127.0.0.1 (needs kvorum-node installed)',
    load: async () => {
      const m = await import('./dev.js')
      const run = async (argv: string[]) => {
        await m.dev(argv)
        return KEEP_RUNNING
      }
      return { help: m.DEV_HELP, run }
    },
  },
  cluster: CLUSTER,
  store: STORE,
  get: data('get', GET_HELP, 'read a key: its values and the context for the next write'),
  put: data('put', PUT_HELP, 'write a value (from an argument, stdin or a file)'),
  delete: data('delete', DELETE_HELP, 'delete a key'),
  status: {
    summary: 'nodes, partitions, stores and the hint backlog',
    load: async () => {
      const m = await import('./status.js')
      return { help: m.STATUS_HELP, run: m.status }
    },
  },
  keys: {
    summary: 'list the live keys of a store (not a snapshot), with --prefix and --limit',
    load: async () => ({ help: (await import('./keys.js')).KEYS_HELP, run: async (argv) => (await import('./keys.js')).keysCommand('keys', argv) }),
  },
  count: {
    summary: 'count the live keys of a store, with progress',
    load: async () => ({ help: (await import('./keys.js')).COUNT_HELP, run: async (argv) => (await import('./keys.js')).keysCommand('count', argv) }),
  },
  export: {
    summary: 'write a store’s keys, siblings, clocks and tombstones to a checksummed file',
    load: async () => {
      const m = await import('./export.js')
      return { help: m.EXPORT_HELP, run: m.exportCommand }
    },
  },
  import: {
    summary: 'merge an export back into a cluster (idempotent; deletes stay deleted)',
    load: async () => {
      const m = await import('./import.js')
      return { help: m.IMPORT_HELP, run: m.importCommand }
    },
  },
  repair: {
    summary: 'one Merkle anti-entropy pass, or --daemon to keep repairing',
    load: async () => {
      const m = await import('./repair.js')
      return { help: m.REPAIR_HELP, run: m.repair }
    },
  },
  bench: {
    summary: 'YCSB-style benchmark (starts its own cluster unless --seeds; needs kvorum-node)',
    load: async () => {
      const m = await import('./bench/command.js')
      return { help: m.BENCH_HELP, run: m.bench }
    },
  },
  dashboard: {
    summary: 'serve a live page of the cluster: ring, node health, hints, rebalance, charts',
    load: async () => {
      const m = await import('./dashboard/command.js')
      const run = async (argv: string[]) => {
        await m.dashboard(argv)
        return KEEP_RUNNING
      }
      return { help: m.DASHBOARD_HELP, run }
    },
  },
}

export function isGroup(c: Command | Group): c is Group {
  return 'subcommands' in c
}

/** A group's help: its usage line, then its subcommands. */
export function groupHelp(name: string, group: Group): string {
  const names = Object.keys(group.subcommands)
  const width = Math.max(...names.map((n) => n.length)) + 2
  return `kvorum ${name} <${names.join('|')}> [flags]
  ${group.summary[0]?.toUpperCase()}${group.summary.slice(1)}.

Subcommands:
${names.map((n) => `  ${n.padEnd(width)}${group.subcommands[n]?.summary}`).join('\n')}

Run kvorum ${name} <subcommand> --help for its flags.`
}
