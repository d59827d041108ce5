// BokehJS's repaints without the style engine. A live frame repaints the figures whose data
// changed; BokehJS 3.x reads computed styles during each repaint, and each read after the page's
// DOM changed (every widget update does) forces a style recalculation of the page:
// 1. a `--bk-*` CSS variable before every visual property it paints with (bokeh/bokeh#15286,
//    open): this page and its stylesheets define none, so the answer is always "" (0.5 s less
//    main-thread work at first paint; tests/test_dashboard_browser checks the page never asks);
// 2. the plot's font size (getComputedStyle(el).fontSize) each time an axis measures its tick
//    labels: the plot's :host font size is fixed, so it is read once per plot view (a trace of
//    the market view at 2,000 trades/s: 145 ms/s of forced style recalculation, the largest part);
// 3. an HTML legend re-positions itself (a stylesheet rewrite and two bounding-box reads) at
//    every repaint of its figure (the z-score's, every frame): skipped while its CSS position and
//    its plot's frame are unchanged (a render, e.g. new items, positions it again).
// 4. every renderer rewrites its element's stylesheet at every repaint (`:host` position and
//    size), which makes the browser re-parse it and recalculate the styles of its shadow tree,
//    and the next canvas font set (each tick label) waits for that: a stylesheet whose text is
//    unchanged is not rewritten (the same text is the same stylesheet).
// Each is checked for and reported (console.warn) if a BokehJS upgrade moved it.
const patch = (what, fn) => {
  try {
    if (!fn()) console.warn(`qdash: BokehJS has no ${what}; that lookup stays on`);
  } catch (e) {
    console.warn(`qdash: BokehJS ${what}: ${e}`);
  }
};
if (window.Bokeh) {
  patch("VisualProperties._get_css_value", () => {
    const proto = Bokeh.require("core/visuals/visual").VisualProperties?.prototype;
    if (typeof proto?._get_css_value !== "function") return false;
    proto._get_css_value = () => "";
    return true;
  });
  patch("InlineStyleSheet._update", () => {
    const proto = Bokeh.require("core/dom").InlineStyleSheet?.prototype;
    const update = proto?._update;
    if (typeof update !== "function") return false;
    proto._update = function (css) {
      if (this.el.textContent !== css) update.call(this, css);
    };
    return true;
  });
  patch("PlotView.base_font_size", () => {
    const proto = Bokeh.require("models/plots/plot_canvas").PlotView?.prototype;
    const read = proto && Object.getOwnPropertyDescriptor(proto, "base_font_size")?.get;
    if (typeof read !== "function") return false;
    Object.defineProperty(proto, "base_font_size", {
      configurable: true,
      get() {
        if (this._qdash_font_size == null) this._qdash_font_size = read.call(this);
        return this._qdash_font_size;
      },
    });
    return true;
  });
  patch("LegendView.update_position", () => {
    const proto = Bokeh.require("models/annotations/legend").LegendView?.prototype;
    const { update_position, after_render } = proto ?? {};
    if (typeof update_position !== "function" || typeof after_render !== "function") return false;
    proto.update_position = function () {
      const { x, y, width, height } = this.plot_view.frame.bbox;
      const key = `${this.is_visible && JSON.stringify(this.css_position)} ${x} ${y} ${width} ${height}`;
      if (key === this._qdash_position && this._bbox != null) return;
      update_position.call(this);
      this._qdash_position = key;
    };
    proto.after_render = function () {
      this._qdash_position = undefined;
      after_render.call(this);
    };
    return true;
  });
}
