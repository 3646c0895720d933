// The library ships no types; this is the part of its output the dashboard reads.
declare module 'parse-prometheus-text-format' {
  /** One sample of a family: its labels and its value as written in the text. */
  export interface PrometheusSample {
    readonly labels?: Readonly<Record<string, string>>
    readonly value?: string
  }
  /** One metric family (`# TYPE` block). */
  export interface PrometheusFamily {
    readonly name: string
    readonly help: string
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    readonly metrics: readonly PrometheusSample[]
  }
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[]
}
