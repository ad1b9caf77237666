#!/bin/sh
# Stage one binary package's files: debian/stage.sh ROLE DESTDIR  (ROLE: master|slave|webapp)
#
# Each package gets a self-contained copy of the repository layout under
# /usr/lib/lexbuilder/ROLE/ (three packages cannot share files, and all three need
# shared-models and some of the same modules):
#   packages/ROLE/{bin,dist,views,public,package.json}
#   packages/shared-models/{dist,package.json}
#   node_modules/   production dependencies of ROLE only (npm ls --omit=dev), with the
#                   workspace link @lexbuilder/shared-models -> ../../packages/shared-models
#   migrations/     (master, webapp) found by shared-models at ../../../../migrations from dist/db/
# and /usr/bin wrappers for the package's bin entries, which read /etc/lexbuilder/ROLE.env
# for variables the caller did not set.
set -eu

role="$1"
dest="$2"
top="$(pwd)"
lib="/usr/lib/lexbuilder/${role}"
root="${dest}${lib}"

case "${role}" in
	master|slave|webapp) ;;
	*) echo "stage.sh: unknown role ${role}; use master, slave or webapp." >&2; exit 2 ;;
esac

rm -rf "${root}"
mkdir -p "${root}/packages" "${root}/node_modules/@lexbuilder" "${dest}/usr/bin"

copy_package() {
	name="$1"
	src="packages/${name}"
	out="${root}/packages/${name}"
	if [ ! -d "${src}/dist" ]; then
		echo "stage.sh: ${src}/dist is missing; build first (npx tsc -b)." >&2
		exit 1
	fi
	mkdir -p "${out}"
	cp -p "${src}/package.json" "${out}/"
	for d in bin dist views public; do
		[ -d "${src}/${d}" ] && cp -a "${src}/${d}" "${out}/"
	done
	# Type declarations, source maps (their sources are not shipped) and build info stay out.
	find "${out}" \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '*.js.map' -o -name '*.tsbuildinfo' \) -delete
}

copy_package shared-models
copy_package "${role}"
ln -s ../../packages/shared-models "${root}/node_modules/@lexbuilder/shared-models"

# The master applies the migrations; the webapp checks at start-up that they are applied.
if [ "${role}" != slave ]; then
	mkdir -p "${root}/migrations"
	cp -p migrations/*.sql "${root}/migrations/"
fi

# Production dependencies of this workspace, each copied without its nested node_modules
# (the nested ones that are needed are listed separately by npm ls).
npm ls --omit=dev --all --parseable --workspace "packages/${role}" >"${dest}.modules"
while IFS= read -r path; do
	rel="${path#"${top}"/}"
	case "${rel}" in
		"${top}"|node_modules/@lexbuilder/*) continue ;;
		node_modules/*) ;;
		*) continue ;;
	esac
	tar -C "${top}" --exclude="${rel}/node_modules" -cf - "${rel}" | tar -C "${root}" -xf -
done <"${dest}.modules"
rm -f "${dest}.modules"
# What only a module's own developers use stays out: tests, benchmarks, examples, docs,
# linters' and CI configuration, lock files, node_modules/.bin.
find "${root}/node_modules" -mindepth 1 -maxdepth 3 -type d \( -name test -o -name tests \
	-o -name __tests__ -o -name benchmark -o -name benchmarks -o -name bench -o -name example \
	-o -name examples -o -name docs -o -name .github \) \
	-exec sh -c 'test -f "$(dirname "$1")/package.json"' sh {} \; -prune -exec rm -rf {} +
rm -rf "${root}/node_modules/.bin"
find "${root}/node_modules" \( -name '.eslintrc*' -o -name .gitattributes -o -name .editorconfig \
	-o -name '.nycrc*' -o -name '.prettierrc*' -o -name .taprc -o -name .travis.yml \
	-o -name .npmignore -o -name package-lock.json -o -path '*/scripts/benchmark*' \) -exec rm -rf {} +
find "${root}/node_modules" -mindepth 2 -maxdepth 3 -name index.html \
	-exec sh -c 'test -f "$(dirname "$1")/package.json"' sh {} \; -delete

# Commands on PATH: one wrapper per bin entry of the role's package.json.
case "${role}" in
	master) envfile=/etc/lexbuilder/master.env ;;
	slave) envfile=/etc/lexbuilder/slave.env ;;
	webapp) envfile=/etc/lexbuilder/webapp.env ;;
esac
node -e '
const pkg = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const bin = typeof pkg.bin === "string" ? { [pkg.name.split("/").pop()]: pkg.bin } : (pkg.bin ?? {});
for (const [name, file] of Object.entries(bin)) console.log(name + " " + file.replace(/^\.\//, ""));
' "packages/${role}/package.json" | while read -r name file; do
	sed -e "s|@NAME@|${name}|g" -e "s|@SCRIPT@|${lib}/packages/${role}/${file}|g" \
		-e "s|@ENVFILE@|${envfile}|g" -e "s|@PACKAGE@|lexbuilder-${role}|g" \
		debian/wrapper.in >"${dest}/usr/bin/${name}"
	chmod 0755 "${dest}/usr/bin/${name}"
	chmod 0755 "${root}/packages/${role}/${file}"
done

# Configuration with every option commented out.
mkdir -p "${dest}/etc/lexbuilder"
install -m 0644 "debian/conf/${role}.env" "${dest}/etc/lexbuilder/${role}.env"
