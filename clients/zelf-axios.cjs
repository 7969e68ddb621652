// Seed 000 ("Create Session"), its Node.js (Axios) example as published, pointed at a gateway.
// Only the URL changes: ZELF_URL (e.g. http://127.0.0.1:8000) replaces http://localhost:3002.
// Prints the response body as JSON on one line, exactly as the seed's example does.
const axios = require('axios');

let data = JSON.stringify({
  "identifier": process.env.ZELF_IDENTIFIER || "device_unique_id_here"
});

let config = {
  method: 'post',
  maxBodyLength: Infinity,
  url: process.env.ZELF_URL + '/api/sessions',
  headers: { 
    'Content-Type': 'application/json',
    'Authorization': 'Bearer YOUR_ACCESS_TOKEN'
  },
  data : data
};

axios.request(config)
.then((response) => {
  console.log(JSON.stringify(response.data));
})
.catch((error) => {
  console.log(error);
  process.exit(1);
});
