// Called in a page served by Netron (harness/report/netron.py, Runtime.callFunctionOn).
// With a url, opens that model in the page (Netron's own open-from-URL step); then waits
// until Netron shows the graph, runs Netron's own export (its "Export as SVG/PNG" menu
// entries) with the host's download step replaced, and returns the exported file: SVG
// text, or PNG bytes as base64, with the texts of the graph's nodes.
async function netronExport(format, timeoutMs, url, name) {
    const deadline = Date.now() + timeoutMs;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const state = () => (window.document.body ? window.document.body.className : 'not loaded');
    const shown = (view) => view && view.activeTarget && state().split(' ').includes('default');
    const message = () => {
        const text = window.document.getElementById('message-text');
        return `Netron: ${text && text.innerText ? text.innerText : 'a message instead of the graph'}`;
    };
    let opened = url ? null : '';
    let view = null;
    for (;;) {
        view = window.__view__;
        if (url && opened === null && shown(view)) {  // the page is ready: open the next model in it
            opened = undefined;
            view._host._openModel(url, null, name).then(
                (status) => { opened = status === '' ? '' : `Netron could not open the model (${status})`; },
                (error) => { opened = `Netron could not open the model: ${error}`; });
        } else if (opened === '' && shown(view)) {
            break;
        }
        const classes = state().split(' ');
        if (['alert', 'notification', 'message'].some((c) => classes.includes(c))) {
            return { error: message() };  // Netron shows an error (alert) or asks something (notification)
        }
        if (typeof opened === 'string' && opened !== '') {
            return { error: opened };
        }
        if (Date.now() > deadline) {
            return { error: `Netron showed no graph within ${timeoutMs / 1000} s (page state: '${state()}')` };
        }
        await sleep(10);  // eslint-disable-line no-await-in-loop
    }
    const host = view._host;
    const download = host.export;
    let exported = null;
    host.export = async (file, blob) => {
        exported = blob;
    };
    try {
        await view.export(`graph.${format}`);
    } finally {
        host.export = download;
    }
    if (!exported) {
        return { error: `Netron exported no ${format}` };
    }
    const canvas = window.document.getElementById('canvas');
    const labels = Array.from(canvas.querySelectorAll('.node text')).map((t) => t.textContent);
    if (format === 'svg') {
        return { data: await exported.text(), labels };
    }
    const bytes = new Uint8Array(await exported.arrayBuffer());
    const chunks = [];
    for (let i = 0; i < bytes.length; i += 0x8000) {
        chunks.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return { data: window.btoa(chunks.join('')), labels };
}
