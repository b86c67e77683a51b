// Runs a CloudFront Function under node, as CloudFront calls it, for the tests and the local
// CDN (pipeline/delivery/node.py). The first line on stdin is the function's code as a JSON
// string; then each line is one event, answered by one line: {"result": ...} or {"error": ...}.
// The code runs in a context of its own with none of node's globals (no require, process,
// console, timers), closer to the edge's sandbox than node itself, and each call is cut off
// after CALL_TIMEOUT_MS.
'use strict';
const readline = require('readline');
const vm = require('vm');

const CALL_TIMEOUT_MS = 1000;
const context = vm.createContext({});
let loaded = false;

function answer(body) {
    process.stdout.write(JSON.stringify(body) + '\n');
}

readline.createInterface({input: process.stdin}).on('line', function (line) {
    try {
        if (!loaded) {
            vm.runInContext(JSON.parse(line), context, {filename: 'function.js'});
            if (typeof context.handler !== 'function') {
                throw new Error('the code defines no function handler(event)');
            }
            loaded = true;
            answer({result: 'loaded'});
            return;
        }
        context.event = JSON.parse(line);
        const result = vm.runInContext('handler(event)', context, {timeout: CALL_TIMEOUT_MS});
        answer({result: result});
    } catch (error) {
        answer({error: String(error && error.stack || error)});
    }
});
