"""The report's stylesheet: one inline ``<style>``, for the screen (1280 px and narrower) and for print (A4)."""

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #111; background: #fff; margin: 1.5rem auto; max-width: 88rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #222; padding-bottom: .15rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
p.lead { margin: 0 0 1rem; color: #333; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1.1rem; font-size: .88rem; }
table.summary { width: auto; min-width: 36rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .25rem .45rem; text-align: left; vertical-align: top; }
thead th { background: #e9e9e9; }
tbody th[scope=row] { background: #f4f4f4; font-weight: 600; width: 22rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
time, .when { white-space: nowrap; }
.local { display: block; color: #3d3d3d; font-size: .92em; white-space: nowrap; }
td time, td .local { white-space: normal; } .t { white-space: nowrap; }
td { overflow-wrap: break-word; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85em; }
code { overflow-wrap: break-word; }
pre { background: #f4f4f4; border: 1px solid #ccc; padding: .5rem .7rem; white-space: pre-wrap; word-break: break-all; }
.tag { display: inline-block; border: 1px solid currentColor; border-radius: .25rem; padding: 0 .3rem; font-weight: 600;
       font-size: .85em; white-space: nowrap; }
.good { color: #0b5d1e; } .bad { color: #a4000f; } .warn { color: #7a4a00; } .none { color: #555; }
nav ol { columns: 2; margin: .3rem 0 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
form.period { display: flex; flex-wrap: wrap; gap: .8rem; align-items: end; border: 1px solid #bbb;
  padding: .6rem .8rem; margin: .6rem 0; }
form.period label { display: flex; flex-direction: column; font-weight: 600; font-size: .9rem; }
form.period input { font: inherit; padding: .2rem .3rem; }
form.period button { font: inherit; padding: .25rem .9rem; }
a { color: #0645ad; }
/* the people table: seven columns that fit 1280 px and an A4 page; long values wrap */
table.people .tag { white-space: normal; } table.people code { white-space: nowrap; }
table.people .id { display: block; color: #3d3d3d; font-size: .92em; }
abbr[title] { text-decoration: underline dotted; cursor: help; }
/* owed work: thirteen columns; timestamps and ids break anywhere so the table fits 1280 px */
table.owed { font-size: .8rem; } table.owed td, table.owed th { overflow-wrap: anywhere; }
/* charts: inline SVG beside the numbers they draw */
.charts { display: grid; gap: .4rem; }
figure.chart { margin: .8rem 0 1.2rem; border: 1px solid #bbb; padding: .6rem .8rem; break-inside: avoid; }
figure.chart .chart-body { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: flex-start; }
figure.chart svg { flex: 1 1 30rem; width: 100%; max-width: 720px; height: auto; color: #111; }
figure.chart svg text { fill: #111; }
table.chart-numbers { width: auto; flex: 0 1 auto; margin: 0; font-size: .82rem; }
table.chart-numbers caption { font-weight: 600; font-size: .85rem; }
figure.chart figcaption { margin-top: .3rem; font-size: .9rem; color: #222; }
.case figure.chart { border-style: dashed; }
footer { margin-top: 2.5rem; border-top: 1px solid #bbb; padding-top: .5rem; color: #444; font-size: .85rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; padding: 0; }
  nav, form.period, .noprint { display: none !important; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid-page; } h3 { break-after: avoid-page; }
  tr, .case, figure.chart { break-inside: avoid-page; }
  section.person { break-inside: avoid-page; break-before: auto; }
  section.person + section.person { border-top: 1px solid #999; }
  figure.chart svg { max-width: 100%; flex-basis: 100%; }
  figure.chart { padding: .3rem .4rem; }
  /* on paper a long identifier breaks anywhere rather than run off the page; words stay whole */
  td code, td a, td .mono, td .local, td .key { overflow-wrap: anywhere; }
  abbr[title]::after { content: " (" attr(title) ")"; }
  thead { display: table-header-group; }
  table { font-size: 8.5pt; }
  table.owed { font-size: 7pt; } table.owed th, table.owed td { padding: .15rem .2rem; }
  thead th, tbody th[scope=row], pre { background: none; }
  @page { margin: 14mm 10mm; }
}
"""
