/* The saved Jupyter widgets of a page, read offline. Loaded between require.js and the widget manager
   (nb_ipywidgets_js in _config.yml; the files come from esclib/runner/assets.py).
   1. The widget manager loads its icon fonts relative to its own module's URL, which require.js puts next to the
      page: map that module to the local copy in _static/html-manager.
   2. ipywidgets typesets labels with MathJax 2's MathJax.Hub.Queue, and the book loads MathJax 3: once MathJax 3
      has replaced its configuration object (deferred scripts run before DOMContentLoaded, the widgets render on
      load), forward those calls to MathJax 3's typesetPromise. */
(function () {
  var here = document.currentScript.src;
  var folder = here.slice(0, here.lastIndexOf("/") + 1);
  require.config({paths: {"@jupyter-widgets/html-manager/dist": folder + "html-manager"}});
  document.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub) {
      return;
    }
    mathjax.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset") {
            var ready = (mathjax.startup && mathjax.startup.promise) || Promise.resolve();
            ready.then(function () { return mathjax.typesetPromise(job[2] ? [job[2]] : undefined); });
          }
        });
      }
    };
  });
})();
