// Which files of which Debian packages are photographs, and which images of those packages are
// not (with the reason), for tools/make-photo-corpus.ts. Each file here was looked at: a
// photo is a camera picture of a real scene, possibly colour-graded or blurred, not a drawing,
// render, logo, abstract or a photo with graphics composited on it. Licence and authors of
// wallpaper packages are read from the package's copyright file at build time; library
// packages state the licence of their sample images in their docs, quoted in `licence`.

const SKIMAGE = 'usr/lib/python3/dist-packages/skimage/data';
const SKLEARN = 'usr/lib/python3/dist-packages/sklearn/datasets/images';
const LOMIRI = 'usr/share/backgrounds';
const MATE = 'usr/share/backgrounds/mate/nature';
const LXQT = 'usr/share/lxqt/wallpapers';

/**
 * package -> photos. A photo is a file path inside the package, or for a Plasma wallpaper
 * `plasma:<Name>` (the largest image of usr/share/wallpapers/<Name>/contents/images; the
 * other files there are the same photo at other sizes), or `folder:<path>` (every .jpg/.png in
 * it but `except`). `licence`/`author` override what the
 * copyright file says, for files it does not cover one by one.
 */
export interface PhotoSource {
  file: string;
  licence?: string;
  author?: string;
  /** For `folder:<path>`: file names in the folder that are not photos (see EXCLUDED). */
  except?: string[];
}

export const SOURCES: Record<string, PhotoSource[]> = {
  'lomiri-wallpapers-16.04': [
    'Bridge_by_Sander_Klootwijk.jpg', 'Dragonfly_by_Bolly.jpg', 'Picture_0B_by_freespace.jpg',
    'Picture_1A_by_freespace.jpg', 'Wine_by_Jakkub_Mede.jpg', 'aitzgorri_by_Aitzol_Berasategi.jpg',
    'free_by_Peter_Nerlich.jpg', 'friends_by_Aitzol_Berasategi.jpg', 'greentock_by_Peter_Nerlich.jpg',
    'life_by_Aitzol_Berasategi.jpg', 'picosdeeuropa_by_Aitzol_Berasategi.jpg',
    'seeding_by_Clements_Engelhardt.jpg', 'sunset_by_Aitzol_Berasategi.jpg',
  ].map((f) => ({ file: `${LOMIRI}/${f}` })),
  'lomiri-wallpapers-20.04': [{ file: `${LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg` }],
  'mate-backgrounds': [
    'Aqua', 'Blinds', 'Dune', 'FreshFlower', 'Garden', 'GreenMeadow', 'LadyBird', 'RainDrops', 'Storm',
    'TwoWings', 'Wood', 'YellowFlower',
  ].map((f) => ({ file: `${MATE}/${f}.jpg` })),
  'plasma-workspace-wallpapers': [
    'BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey',
    'OneStandsOut', 'Path', 'summer_1am',
  ].map((name) => ({ file: `plasma:${name}` })),
  'lxqt-themes': [
    'Butterfly-Kenneth-Wimer.jpg', 'Valendas.png', 'after-the-rain.jpg', 'appleflower.png', 'beam.png',
    'butterfly.png', 'cloud.png', 'drop.png', 'flowers.png', 'fog.jpg', 'this-is-not-windows.jpg',
  ].map((f) => ({ file: `${LXQT}/${f}` })),
  // The landscapes shown when the game's ship lands: photos from morgueFile, unsplash, NASA,
  // USGS, Wikimedia Commons users and contributors, colour-graded to look like other planets.
  'endless-sky-data': [{ file: 'folder:usr/share/games/endless-sky/images/land', except: ['nasa8.jpg', 'nasa9.jpg', 'space6.jpg'] }],
  'python3-skimage': [
    ['astronaut.png', 'public domain (no known copyright restrictions)', 'NASA (Eileen Collins)'],
    ['brick.png', 'CC0-1.0', 'CC0Textures (Bricks25)'],
    ['camera.png', 'CC0-1.0', 'Lav Varshney (scikit-image)'],
    ['chelsea.png', 'CC0-1.0', 'Stéfan van der Walt'],
    ['coffee.png', 'CC0-1.0', 'Rachel Michetti'],
    ['coins.png', 'no known copyright restrictions', 'Brooklyn Museum collection (Greek coins from Pompeii)'],
    ['grass.png', 'CC0-1.0', 'linolafett (DeviantArt, Grass-01)'],
    ['gravel.png', 'CC0-1.0', 'CC0Textures (Gravel04)'],
    ['hubble_deep_field.jpg', 'public domain', 'NASA'],
    ['ihc.png', 'no known copyright restrictions', 'immunohistochemistry microscope image'],
    ['motorcycle_left.png', 'Middlebury 2014 stereo data set terms (use permitted, citation requested)', 'Scharstein et al., GCPR 2014'],
    ['retina.jpg', 'CC0-1.0', 'Mikael Häggström (Wikimedia Commons)'],
    ['rocket.jpg', 'public domain', 'SpaceX (DSCOVR launch)'],
  ].map(([f, licence, author]) => ({ file: `${SKIMAGE}/${f}`, licence: `${licence} (skimage/data/_fetchers.py)`, author })),
  'python3-sklearn': [
    { file: `${SKLEARN}/china.jpg`, licence: 'CC-BY-2.0 (sklearn/datasets/images/README.txt)', author: 'danielbuechele (Flickr)' },
    { file: `${SKLEARN}/flower.jpg`, licence: 'CC-BY-2.0 (sklearn/datasets/images/README.txt)', author: 'vultilion (Flickr)' },
  ],
  'python3-scipy': [
    {
      file: 'usr/lib/python3/dist-packages/scipy/misc/face.dat',
      licence: 'public domain (scipy.misc.face docstring)',
      author: 'raccoon-procyon-lotor.jpg, public-domain-image.com',
    },
  ],
  'python-matplotlib-data': [
    {
      file: 'usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg',
      licence: 'public domain (US Navy photograph)',
      author: 'US Navy (Grace Hopper)',
    },
  ],
};

/** Images of the same packages (and of packages looked at) that are not photos. */
/** [package, images, reason] */
export const EXCLUDED: ReadonlyArray<readonly [string, string, string]> = [
  ['gnome-backgrounds', 'all 25 images (adwaita, blobs, drool, dune, field, grid, licorice, oceans, pixels, symbolic, truchet, vnc, wood)', 'renders, vector art and patterns'],
  ['plasma-workspace-wallpapers', 'Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow, FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak, SafeLanding, Shell, Volna', 'drawings, renders and abstract art'],
  ['plasma-workspace-wallpapers', 'Kite', 'sky photo with a drawn kite composited in'],
  ['lomiri-wallpapers-16.04', 'umang_by_Abhishek_Mudgal.jpg', 'colour gradient'],
  ['lomiri-wallpapers-16.04', 'analogpattern_by_Peter_Nerlich.jpg', 'colour-tinted wall texture, edited beyond a photo of a scene'],
  ['lomiri-wallpapers-20.04', 'Fossa, Painting-Colors', 'abstract art'],
  ['lomiri-wallpapers-20.04', 'Infinite-Sea_by_Aury88.jpg', 'night sky photo with geometric overlays'],
  ['lomiri-wallpapers', 'warty-final-ubuntu.png', 'abstract'],
  ['mate-backgrounds', 'abstract/* (Elephants is a painting), desktop/*', 'paintings, abstract art, logos'],
  ['ukui-wallpapers', 'all 12 images', 'illustrations and abstract art'],
  ['lxqt-themes', 'kde-plasma, lxqt-origami-*, origami-*, plasma-logo-*, plasma_arch, simple_blue_widescreen, triangles*, waves-*', 'abstract art and logos'],
  ['desktop-base', 'all themes (emerald, futureprototype, homeworld, joy, lines, moonlight, softwaves, spacefun)', 'Debian artwork: drawings and renders'],
  ['sway-backgrounds', 'all 8 images', 'logo on a flat background'],
  ['xfdesktop4-data', 'all images', 'logos and flat colour'],
  ['mypaint-data-extras', 'all 17 backgrounds', 'paper and canvas textures for painting'],
  ['endless-sky-data', 'images/land/nasa8.jpg, nasa9.jpg', 'false-colour spacecraft images of Jupiter\'s clouds'],
  ['endless-sky-data', 'images/land/space6.jpg', 'abstract light streaks'],
  ['endless-sky-data', 'images/{scene,planet,ship,outfit,...}/*', 'game art: renders and drawings (a few NASA photos among the scenes were not looked at one by one)'],
  ['python3-skimage', 'cell, clock_motion, color, horse, microaneurysms, page, text, chessboard*, checker*, logo, palette*, phantom', 'synthetic images, silhouettes, scans of text, microscopy crops'],
  ['python3-skimage', 'moon.png', 'a photo, but its docstring states no licence or source'],
  ['python3-skimage', 'motorcycle_right.png', 'the same scene as motorcycle_left (a stereo pair): one photo'],
  ['python-matplotlib-data', 'logo2.png, Minduka_Present_Blue_Pack.png', 'logo and clip art'],
];
