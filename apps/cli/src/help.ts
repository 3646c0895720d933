/**
 * Help texts of the commands whose code lives in get/put/delete and main, and
 * the pieces every data command's help shares. Each text starts with its usage
 * line(s): the unindented lines before the first indented one, which a usage
 * mistake prints (see usageOf).
 */

/** Flags every command that talks to a cluster takes. */
const CONNECTION_HELP = `  --seeds HOST:PORT,...   any node(s) of the cluster, host:port (http:// assumed) or a URL; default $KVORUM_SEEDS
  --token T               the cluster token, or the data credential; default $KVORUM_TOKEN
  --token-file F          read it from file F (one token); default $KVORUM_TOKEN_FILE. Keeps it off ps
  --admin-token T         the admin credential (cluster init, rebalance, store changes): sent on admin routes
                          and signs the definitions written; also --admin-token-file F, $KVORUM_ADMIN_TOKEN(_FILE)
  --tls-ca F              PEM CA that signed the nodes' certificates (https:// seeds); default $KVORUM_TLS_CA
  --tls-cert F, --tls-key F  a client certificate and key, for nodes run with --tls-client-ca; $KVORUM_TLS_CERT, _KEY
  --timeout DURATION      deadline of each step of the call (connect, read, write): 500ms, 2s, or ms; default 3s`

const ENV_HELP = `Environment:
  KVORUM_SEEDS   seeds when --seeds is not given
  KVORUM_TOKEN   cluster token when --token is not given (KVORUM_TOKEN_FILE: a file holding it)
  KVORUM_ADMIN_TOKEN, KVORUM_TLS_CA, KVORUM_TLS_CERT, KVORUM_TLS_KEY   as their flags
  KVORUM_DEBUG   set to 1 to print the stack of an unexpected error`

export const GET_HELP = `kvorum get <store> <key> [flags]
  Read a key: print each of its values (siblings when writers raced) and then the
  context, which a put or delete passes with --context to replace what was read.

Flags:
  --codec utf8|json|bytes how values are shown; default utf8
                            utf8   text; a value that is not UTF-8 is printed as base64, with a note on stderr
                            json   each value parsed and printed indented (--compact: one line each)
                            bytes  base64, one value a line (so siblings stay apart and a terminal stays sane)
  --raw                   write the value's stored bytes to stdout unchanged, nothing else (no newline; the
                            context goes to stderr); refused when the key holds siblings
  --compact               with --codec json, one line per value
  --json                  print the result as one JSON object: {found, values, context, siblings}; values
                            follow --codec, a non-UTF-8 value under utf8 is {"base64": "..."}
  --fail-missing          exit 3 when the key is absent (by default a missing key prints "(not found)", exit 0)
  --r N                   replies to wait for; default the store's r
  --pr N                  of them, how many from primaries; default the store's pr
${CONNECTION_HELP}

Exit codes: 0 read (a missing key too), 1 the read failed, 2 usage mistake, 3 absent with --fail-missing.

${ENV_HELP}

Examples:
  kvorum get default hello --seeds 127.0.0.1:7070
  kvorum get default cart:42 --codec json --fail-missing
  kvorum get default photo --codec bytes --raw > photo.png`

export const PUT_HELP = `kvorum put <store> <key> <value | - | @file> [flags]
  Write a value. With --context (from a get) it replaces the versions that get read;
  without one it is a blind write that is kept beside them as a sibling, and the
  command says so on stderr ("stored beside 1 version; pass --context to replace").

Value:
  text                    the argument itself (under --codec bytes: base64)
  -                       read from stdin, byte for byte
  @path                   read from a file, byte for byte
  --literal               take the argument as given, even "-" or one starting with @

Flags:
  --codec utf8|json|bytes what the value is; default utf8
                            utf8   UTF-8 text (stdin or a file must hold UTF-8)
                            json   parsed as JSON (refused when it is not) and stored compact
                            bytes  raw bytes from - or @file; an argument is decoded from base64
  --context C             the context a get printed: replace what it read
  --json                  print the result as JSON: {ok, context, storedBeside}
  --ttl-ms MS             time to live, ms: the value reads as absent that long after the write
                            (0: never expires); default the store's ttlMs, none unless it sets one
  --w N                   acknowledgements to wait for; default the store's w
  --pw N                  of them, how many from primaries; default the store's pw
${CONNECTION_HELP}

Exit codes: 0 written, 1 the write failed (it may still have applied: see the message), 2 usage mistake.

${ENV_HELP}

Examples:
  kvorum put default hello world --seeds 127.0.0.1:7070
  kvorum put default session:9 "$SID" --ttl-ms 1800000
  echo '{"items":[1,2]}' | kvorum put default cart:42 - --codec json --context "$CTX"
  kvorum put default photo @photo.png --codec bytes`

export const DELETE_HELP = `kvorum delete <store> <key> [flags]
  Delete a key: a tombstone written through the same quorums. Without --context the
  key is read first, so the delete covers every version there.

Flags:
  --context C             the context a get printed: delete exactly what it read
  --json                  print the result as JSON: {ok, context}
  --r N, --pr N           replies (and from primaries) the read before the delete waits for
  --w N, --pw N           acknowledgements (and from primaries) the delete waits for
${CONNECTION_HELP}

Exit codes: 0 deleted (a key that was absent too), 1 the delete failed, 2 usage mistake.

${ENV_HELP}`

/** A command as the top-level help lists it. */
export interface Listed {
  readonly name: string
  readonly summary: string
}

/** `kvorum --help`: the commands, where to find each one's flags, the environment and the exit codes. */
export function topHelp(commands: readonly Listed[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2
  return `kvorum: command line of the Kvorum key-value store

Usage: kvorum <command> [arguments] [flags]
       kvorum <command> --help    that command's flags and examples
       kvorum --version

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

${ENV_HELP}

Exit codes: 0 ok, 1 the operation failed (one line "kvorum: CODE: message" on stderr), 2 usage mistake,
  3 key absent (get --fail-missing only). status exits 1 when a node is down, repair when it skipped replicas.`
}

/** A command's usage line(s): its help up to the first indented line. */
export function usageOf(help: string): string {
  const lines = help.split('\n')
  const end = lines.findIndex((l) => l.length > 0 && /^\s/.test(l))
  return lines
    .slice(0, end < 0 ? 1 : end)
    .filter((l) => l.startsWith('kvorum'))
    .join('\n')
}

/** For the help of commands whose code lives in their own modules (keys, count, export, import). */
export { CONNECTION_HELP, ENV_HELP }
