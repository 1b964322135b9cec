// Timers for a page while it is hidden (timers.js): a worker's are not held back as a hidden
// page's own are. {id, gen, ms, repeat} arms one (`repeat`: its period in ms, or null for once),
// {id, cancel: true} cancels it; each time one runs, {id, gen} is posted back.
const timers = new Map();

onmessage = ({ data }) => {
  clearTimeout(timers.get(data.id));
  timers.delete(data.id);
  if (data.cancel) return;
  const { id, gen, repeat } = data;
  const run = () => {
    postMessage({ id, gen });
    if (repeat === null) timers.delete(id);
    else timers.set(id, setTimeout(run, repeat));
  };
  timers.set(id, setTimeout(run, data.ms));
};
