// Waits until a URL answers 200: the second replica starts once the first one's database is up.
const http = require('http');
const url = process.argv[2];
const again = () => setTimeout(poll, 300);
const poll = () =>
  http
    .get(url, (res) => {
      res.resume();
      if (res.statusCode === 200) process.exit(0);
      again();
    })
    .on('error', again);
poll();
