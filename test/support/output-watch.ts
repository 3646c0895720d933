/**
 * Output arriving from a child process, and waits on it: each `notify()`
 * (call it after every chunk) re-checks every pending wait.
 */
export class OutputWatch {
  readonly #waits = new Set<() => void>()

  notify(): void {
    for (const check of this.#waits) check()
  }

  /**
   * Resolves true once `holds()` does, and otherwise `atExit()` when `exited`
   * settles or false after `ms`.
   */
  until(holds: () => boolean, exited: Promise<unknown>, atExit: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (ok: boolean) => {
        this.#waits.delete(check)
        clearTimeout(timer)
        resolve(ok)
      }
      const check = () => {
        if (holds()) finish(true)
      }
      this.#waits.add(check)
      timer = setTimeout(() => finish(false), ms)
      void exited.then(() => finish(atExit()))
      check()
    })
  }
}
