// The dashboard's scene maps: each scene whose footprint is known gets a Leaflet map with
// its tiles (GET /v1/scenes/{id}/tiles.geojson) drawn in place, coloured by where each
// tile's count came from, with the count (of the picked class, else the total) on it.
// No base map: nothing is fetched from outside the ground.
const SCENE_MAPS = {};
const TILE_COLOURS = {accepted: "#9ecae1", downlinked: "#fdae6b", reused: "#a1d99b",
                      discarded: "#d9d9d9", uncounted: "#ffffff"};
// Counts are written on the tiles up to this many (more would bury the map in labels);
// every tile still shows its count on hover.
const LABELLED_TILES = 400;

// quicklook(scene id): an object URL of the scene's quicklook, or null (none sent): drawn
// under the tiles, over the scene's footprint.
async function drawSceneMaps(scenes, chosen, getJson, fmt, esc, quicklook) {
  const holder = document.querySelector("#maps");
  for (const s of scenes) {
    const fc = await getJson(`/v1/scenes/${encodeURIComponent(s.key || s.scene_id)}/tiles.geojson`);
    const placed = (fc.features || []).filter(f => f.geometry);
    if (!placed.length) continue;  // footprint unknown: the mosaic alone shows it
    let entry = SCENE_MAPS[s.scene_id];
    if (!entry) {
      const box = document.createElement("div");
      box.className = "scene-map-box";
      box.innerHTML = `<b>${esc(s.scene_id)}</b> on the map`;
      const div = document.createElement("div");
      div.className = "scene-map";
      div.dataset.scene = s.scene_id;
      box.appendChild(div);
      holder.appendChild(box);
      // No fade: a refresh replaces the tiles' layer, and fading would leave the old
      // labels in the page for a moment beside the new ones.
      entry = SCENE_MAPS[s.scene_id] = {
        map: L.map(div, {attributionControl: false, fadeAnimation: false}), layer: null, div};
    }
    const first = entry.layer === null;
    if (entry.layer) entry.layer.remove();
    const image = quicklook ? await quicklook(s.scene_id) : null;
    const value = f => chosen ? f.properties[chosen] : f.properties.total;
    const label = placed.length <= LABELLED_TILES;
    entry.layer = L.geoJSON({type: "FeatureCollection", features: placed}, {
      style: f => ({className: `tile-shape ${f.properties.provenance || "pending"}`,
                    color: "#555", weight: 1, fillOpacity: image ? 0.3 : 0.75,
                    fillColor: TILE_COLOURS[f.properties.provenance] || "#eee"}),
      onEachFeature: (f, layer) => layer.bindTooltip(fmt(value(f)), {
        permanent: label, direction: "center", className: "tile-count"}),
    }).addTo(entry.map);
    if (image && !entry.image) {
      entry.image = L.imageOverlay(image, entry.layer.getBounds(), {className: "quicklook"})
        .addTo(entry.map);
      entry.image.bringToBack();
      entry.div.dataset.quicklook = "1";
    }
    entry.div.dataset.tiles = String(placed.length);
    if (first) entry.map.fitBounds(entry.layer.getBounds());
  }
}
