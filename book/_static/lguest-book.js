// Our own page script (not third-party). The theme's FontAwesome replaces <i> icons with
// <svg>; ipywidgets' Play button looks for its <i> icon to switch play/pause and fails when
// it is gone, which stops the TracePlayer. "nest" keeps the <i> and puts the <svg> inside.
window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {autoReplaceSvg: "nest"});
