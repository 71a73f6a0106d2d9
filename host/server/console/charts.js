// charts.js -- the three uPlot charts (rates, commit latency, connections),
// fed with /v1/series points. Each chart keeps its own arrays, so the page
// can show (and a test can read) exactly what is plotted.

import uPlot from "/console/uPlot.esm.js";

/** How many points a chart keeps: ten minutes of once-a-second reports, as the host does. */
const KEEP = 600;

const SPECS = [
  { id: "chart-rates", title: "per second", series: [
    { label: "records/s", key: "recordsPerSec", stroke: "#2e6bd8" },
    { label: "commits/s", key: "commitsPerSec", stroke: "#d8772e" },
    { label: "replies/s", key: "repliesPerSec", stroke: "#3a9a4a" }] },
  { id: "chart-latency", title: "commit latency, µs", series: [
    { label: "p50", key: "p50Us", stroke: "#2e6bd8" },
    { label: "p99", key: "p99Us", stroke: "#d8772e" },
    { label: "max", key: "maxUs", stroke: "#b42318" }] },
  { id: "chart-conns", title: "connections", series: [
    { label: "open", key: "connections", stroke: "#6941c6" }] },
];

export class Charts {
  constructor() {
    this.t = [];
    this.charts = SPECS.map((spec) => {
      const el = document.getElementById(spec.id);
      const data = [this.t, ...spec.series.map(() => [])];
      const plot = new uPlot({
        title: spec.title, width: Math.max(300, el.clientWidth - 10), height: 180,
        scales: { x: { time: true } },
        series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5 }))],
        axes: [{}, { size: 80 }],
      }, data, el);
      return { spec, el, data, plot };
    });
    addEventListener("resize", () => {
      for (const c of this.charts) c.plot.setSize({ width: Math.max(300, c.el.clientWidth - 10), height: 180 });
    });
  }

  /** add -- new points, oldest first; the charts redraw once. */
  add(points) {
    if (!points.length) return;
    for (const p of points) {
      this.t.push(p.t / 1000);
      for (const c of this.charts) c.spec.series.forEach((s, i) => c.data[i + 1].push(p[s.key]));
    }
    const drop = this.t.length - KEEP;
    if (drop > 0) {
      this.t.splice(0, drop);
      for (const c of this.charts) for (let i = 1; i < c.data.length; i++) c.data[i].splice(0, drop);
    }
    for (const c of this.charts) {
      c.plot.setData(c.data);
      // what is plotted, for whoever reads the page without pixels (and for a test)
      c.el.dataset.points = String(this.t.length);
      // (data-max-records-per-sec and so on: the largest value in view)
      c.spec.series.forEach((s, i) => (c.el.dataset[`max${s.key[0].toUpperCase()}${s.key.slice(1)}`] = String(Math.max(0, ...c.data[i + 1]))));
    }
  }
}
