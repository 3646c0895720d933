import { MAX_DB_MIB_LIMIT, MAX_HINTS_LIMIT, MAX_HINT_AGE_S_LIMIT } from './setting-limits.js'

export const USAGE = `kvorum-node: a Kvorum storage node

usage: kvorum-node [flags]

  --config F                a JSON file of settings keyed by flag name (see "config file" below); default $KVORUM_NODE_CONFIG
  --port N                  port to listen on, 0..65535 (default 7070; 0 lets the system pick)
  --host H                  address to bind (default 127.0.0.1)
  --data DIR                directory of the SQLite database, created if missing (default ./data/node-<port>)
  --id ID                   node id in the cluster definition, 1..64 of A-Z a-z 0-9 _ . - (default node-<port>)
  --zone Z                  failure domain this node is in, told in /health; 'kvorum cluster rebalance --add' takes it from there (default none)
  --durability MODE         normal (default: survives a process crash) or full (fsync every group commit)

credentials (default none: every route open, for a loopback dev cluster; docs/security.md):
  --token T                 simple mode: one token for every role, "Authorization: Bearer T" on every route but /health
  --data-token T            the data credential: get, put, batch, hints, scan, repair reads, reading the cluster definition
  --admin-token T           the admin credential: writing the cluster definition (init, rebalance stages, drops, store
                            changes); it also signs definitions, which a data credential may then relay to a lagging node
  --metrics-token T         the scrape credential: GET /metrics only. Alone, it guards /metrics and leaves the rest open
  --token-file F, --data-token-file F, --admin-token-file F, --metrics-token-file F
                            read the token from file F instead: one token a line, two during a rotation (both accepted);
                            surrounding whitespace is dropped. SIGHUP re-reads every file, so a rotation needs no restart
  --data-token, --admin-token and --metrics-token go together: a role left open beside a guarded one is refused.
  A token on the command line is visible to every user of the machine (ps): use the files or the environment.

TLS (default plain HTTP):
  --tls-cert F              serve HTTPS with this PEM certificate (chain) ...
  --tls-key F               ... and this PEM private key; a plain-HTTP request is answered 400 KV_TLS_REQUIRED
  --tls-client-ca F         require a client certificate signed by this PEM CA (mutual TLS)
  SIGHUP re-reads the three files for new connections (a certificate that does not fit its key keeps the old pair)

  --log-level L             fatal, error, warn, info (default), debug (adds one access log line per request) or trace
  --max-hints N             hinted keys kept per target node before new hints are refused, 0..${MAX_HINTS_LIMIT} (default 100000)
  --max-hint-age-s S        hints older than this are dropped and left to anti-entropy, 1..${MAX_HINT_AGE_S_LIMIT} (default 604800, 7 days)
  --cache-mib N             memory for caches, 4..65536 MiB: half SQLite's page cache, half the decoded recently used keys
                            (default 64; a node's resident memory is about 200 MiB plus this, whatever it holds)
  --mmap-mib N              bytes of the database SQLite maps into memory, 0..65536 MiB (default 0); mapped pages count
                            in the node's resident memory and save a copy per read
  --max-db-mib N            quota of the database, 1..${MAX_DB_MIB_LIMIT} MiB: past it, writes that add data are refused with
                            KV_DISK_FULL while reads, deletes and hint delivery go on (default none: the disk's size)
  --version                 print the version and exit
  -h, --help                print this help and exit

environment: every flag but --config, --help and --version has a variable KVORUM_NODE_<FLAG> (upper case, - as _), used
  when the flag is not given: KVORUM_NODE_PORT, KVORUM_NODE_DATA_TOKEN_FILE, KVORUM_NODE_TLS_CERT, ... The secrets:
  KVORUM_NODE_TOKEN, KVORUM_NODE_DATA_TOKEN, KVORUM_NODE_ADMIN_TOKEN, KVORUM_NODE_METRICS_TOKEN. KVORUM_NODE_CONFIG names
  the config file.

config file: one JSON object; its keys are the flag names without --, its values strings or numbers, and a token may
  be a list of two (a rotation). Unknown keys are refused. A flag beats its variable, which beats the file, which beats
  the default. Example: {"port": 7070, "host": "10.0.0.5", "data": "/var/lib/kvorum", "id": "n1",
  "data-token-file": "/etc/kvorum/data-token", "admin-token-file": "/etc/kvorum/admin-token",
  "metrics-token-file": "/etc/kvorum/metrics-token", "tls-cert": "/etc/kvorum/node.pem", "tls-key": "/etc/kvorum/node-key.pem"}

signals: SIGTERM or SIGINT stop the node (in-flight requests finish); SIGHUP re-reads the credentials (flags, variables,
  token files, config file); a mistake in them is logged and the old ones stay.

routes: GET /health (liveness), GET /health?ready=1 (readiness: 503 KV_NO_CLUSTER until 'kvorum cluster init'),
  GET /metrics (Prometheus), and the node protocol under /v1. Logs are JSON lines on stdout.

exit codes: 0 stopped by SIGTERM or SIGINT; 1 could not start (KV_LISTEN_FAILED, KV_DATA_DIR, KV_DATA_FORMAT);
  2 a wrong flag (KV_USAGE). Startup errors are one line on stderr: kvorum-node: CODE: message`
