// Node-RED settings for the ingest benchmark: no editor, no credentials, warnings only.
module.exports = {
    uiPort: parseInt(process.env.NR_PORT, 10),
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: process.env.NR_FLOW,
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false } },
};
