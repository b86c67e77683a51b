// imgpipe's CloudFront Function (runtime cloudfront-js-2.0, viewer request).
//
// A multi-format rendition is written once per format (processed/a.jpg/w800.avif, .webp,
// .jpg) and is also addressed without the extension: its canonical URL. For a canonical URL
// this rewrites the URI to the best format the browser's Accept header takes, among the
// formats that rendition has; CloudFront then caches by the rewritten URI, so each format is
// cached once. Every other URI (one naming a format, anything else) passes through untouched.
//
// Functions cannot read S3, so which URIs are canonical comes from the table below, compiled
// from the stack's profiles at deploy (pipeline/delivery/edge.py replaces the TABLE line).
// Written for the runtime's language: ES 5.1 plus const/let, no for-of, no ES6 string methods.

const TABLE = {"formats": {}, "rules": []};

// A rendition's formats are tried in this order, then its others in its own order, the
// fallback (its last) always last.
const PREFERRED = ['avif', 'webp'];
const RULES = TABLE.rules.map(function (rule) {
    return {pattern: new RegExp(rule[0]), formats: rule[1]};
});

function handler(event) {
    const request = event.request;
    const formats = canonicalFormats(request.uri);
    if (formats !== null) {
        const best = choose(formats, weights(request.headers.accept));
        request.uri = request.uri + '.' + TABLE.formats[best][1];
    }
    return request;
}

// The formats of the rendition whose canonical URL `uri` is, or null: a URI that is a
// rendition's canonical URL plus one of its extensions names a format and is left alone.
function canonicalFormats(uri) {
    const dot = uri.lastIndexOf('.');
    const named = dot > uri.lastIndexOf('/') ? uri.slice(dot + 1) : null;
    let found = null;
    for (let i = 0; i < RULES.length; i++) {
        const rule = RULES[i];
        if (named !== null && hasExtension(rule.formats, named)
            && rule.pattern.test(uri.slice(0, dot))) {
            return null;
        }
        if (found === null && rule.pattern.test(uri)) {
            found = rule.formats;
        }
    }
    return found;
}

function hasExtension(formats, extension) {
    for (let i = 0; i < formats.length; i++) {
        if (TABLE.formats[formats[i]][1] === extension) {
            return true;
        }
    }
    return false;
}

// Accept as {media range: q}; a range listed twice keeps its highest q. A header sent more
// than once arrives with every value in multiValue, `value` being the first.
function weights(accept) {
    const found = {};
    if (!accept || !accept.value) {
        return found;
    }
    const values = accept.multiValue ? accept.multiValue.map(function (v) { return v.value; })
        : [accept.value];
    const ranges = values.join(',').split(',');
    for (let i = 0; i < ranges.length; i++) {
        const parts = ranges[i].split(';');
        const range = parts[0].trim().toLowerCase();
        let q = 1;
        for (let j = 1; j < parts.length; j++) {
            const pair = parts[j].split('=');
            if (pair[0].trim().toLowerCase() === 'q') {
                q = parseFloat(pair[1]);
                q = isNaN(q) ? 0 : q;
            }
        }
        if (range && !(found[range] >= q)) {
            found[range] = q;
        }
    }
    return found;
}

// The format with the highest q, ties going to the earlier in preference order. A format
// other than the fallback must be named in Accept: `*/*` (curl) or `image/*` does not
// promise AVIF or WebP support. The fallback takes wildcards too, and is served when
// nothing else is acceptable (never a 406: every browser shows it).
function choose(formats, accepted) {
    const fallback = formats[formats.length - 1];
    const order = preferenceOrder(formats);
    let best = fallback;
    let bestQ = 0;
    for (let i = 0; i < order.length; i++) {
        const format = order[i];
        const type = TABLE.formats[format][0];
        let q = accepted[type];
        if (format === fallback && q === undefined) {
            q = accepted[type.split('/')[0] + '/*'];
            q = q === undefined ? accepted['*/*'] : q;
        }
        if (q !== undefined && q > bestQ) {
            best = format;
            bestQ = q;
        }
    }
    return best;
}

function preferenceOrder(formats) {
    const fallback = formats[formats.length - 1];
    const order = [];
    for (let i = 0; i < PREFERRED.length; i++) {
        if (PREFERRED[i] !== fallback && formats.indexOf(PREFERRED[i]) >= 0) {
            order.push(PREFERRED[i]);
        }
    }
    for (let i = 0; i < formats.length - 1; i++) {
        if (order.indexOf(formats[i]) < 0) {
            order.push(formats[i]);
        }
    }
    order.push(fallback);
    return order;
}
