// Written for this book. Loaded on pages with widgets just before require.js and embed-amd.js.
// The widget bundle finds its icon fonts relative to the URLs RequireJS gives its modules; by
// default those are relative to the page, where the fonts are not. RequireJS reads a global
// `require` object defined before it loads as its configuration: map the bundle's modules into
// the book's _static/ folder, where the fonts are.
var __lkStatic = new URL(".", document.currentScript.src).href;
window.__jupyter_widgets_assets_path__ = __lkStatic;
var require = {
  paths: {
    "@jupyter-widgets/html-manager/dist": __lkStatic.replace(/\/$/, ""),
    "@jupyter-widgets/html-manager": __lkStatic + "html-manager",
    "@jupyter-widgets/controls": __lkStatic + "controls",
    "@jupyter-widgets/base": __lkStatic + "base",
  },
};
