declare module 'parse-prometheus-text-format' {
  /** Parses Prometheus text exposition into metric families. */
  export default function parse(text: string): { name: string; type: string; metrics: { value?: string; count?: string; labels?: Record<string, string> }[] }[];
}
