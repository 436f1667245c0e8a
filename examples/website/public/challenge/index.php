<?php
/*
 * /challenge/  GET: a new proof-of-work challenge from the daemon (op
 * "challenge"), as JSON in the ALTCHA format: what public/antibot.js
 * fetches when the one the form came with has run out, and what the
 * ALTCHA widget's challengeurl expects.  404 when the daemon asks for none
 * ([antibot] pow = off), 503 when it cannot be reached.
 */
declare(strict_types=1);

require __DIR__ . '/../../lib/site.php';
site_boot('challenge');

header('Content-Type: application/json');
header('Cache-Control: no-store');
header('X-Content-Type-Options: nosniff');
if (site_method() !== 'GET') {
    http_response_code(405);
    header('Allow: GET, HEAD');
    echo "null\n";
    exit;
}
$a = newsletterd_request(['op' => 'challenge']);
if ($a['state'] !== 'ok') {
    http_response_code(503);
    header('Retry-After: 120');
    echo "null\n";
    exit;
}
if (($a['pow'] ?? false) !== true || !is_array($a['challenge'] ?? null)) {
    http_response_code(404);
    echo "null\n";
    exit;
}
echo json_encode($a['challenge'], JSON_UNESCAPED_SLASHES), "\n";
